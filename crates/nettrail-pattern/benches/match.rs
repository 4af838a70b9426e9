//! Match throughput per pattern kind, in bytes of events per second on one core.
//! `cargo bench -p nettrail-pattern` prints the figures; `bench/pattern-vs-rg` compares
//! term patterns with ripgrep on the same text.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nettrail_pattern::corpus::Sampler;
use nettrail_pattern::FilterPattern;

fn events(n: usize, make: impl Fn(&mut Sampler) -> String) -> Vec<String> {
    let mut s = Sampler::new(42);
    (0..n).map(|_| make(&mut s)).collect()
}

fn bench(c: &mut Criterion) {
    let flows = events(20_000, Sampler::flow_line);
    let tunnels = events(20_000, Sampler::tunnel_json);
    let connections = events(20_000, Sampler::connection_json);
    let cases: &[(&str, &str, &[String])] = &[
        ("term selective", "REJECT", &flows),
        ("term absent", "eni-doesnotexist", &flows),
        ("terms and/not", "ACCEPT -3389 443", &flows),
        ("terms or", "?REJECT ?3389", &flows),
        ("regex", r"%eni-0[a-f]{3}%", &flows),
        (
            "delimited vpc ssh reject",
            r#"[version, account, eni, source, destination, srcport, destport="22", protocol="6", packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]"#,
            &flows,
        ),
        (
            "delimited ellipsis",
            "[..., action = REJECT, status]",
            &flows,
        ),
        (
            "json tunnel down",
            r#"{ $.ike_phase1_state = "down" }"#,
            &tunnels,
        ),
        (
            "json connection successful",
            r#"{ $.connection-attempt-status = "successful" }"#,
            &connections,
        ),
        (
            "json compound",
            r#"{ $.connection-attempt-status = "failed" && ($.device-type = "mac" || $.port > 60000) }"#,
            &connections,
        ),
    ];
    let mut group = c.benchmark_group("match");
    for (name, pattern, data) in cases {
        let compiled = FilterPattern::parse(pattern).unwrap();
        let bytes: usize = data.iter().map(|e| e.len() + 1).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), data, |b, data| {
            b.iter(|| data.iter().filter(|e| compiled.matches(e)).count())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
