//! Counts the lines of a file that match a filter pattern, like `rg -c`, and reports the
//! throughput on stderr. With `--generate N KIND`, writes N sample events instead
//! (KIND: flow, tunnel, connection).
//!
//!   cargo run --release -p nettrail-pattern --example count_matches -- 'REJECT' flows.log

use std::io::Write;
use std::time::Instant;

use nettrail_pattern::corpus::Sampler;
use nettrail_pattern::FilterPattern;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--generate") {
        let n: usize = args[1].parse().expect("a count");
        let mut sampler = Sampler::new(7);
        let out = std::io::stdout();
        let mut out = std::io::BufWriter::new(out.lock());
        for _ in 0..n {
            let line = match args[2].as_str() {
                "flow" => sampler.flow_line(),
                "tunnel" => sampler.tunnel_json(),
                _ => sampler.connection_json(),
            };
            writeln!(out, "{line}").unwrap();
        }
        return;
    }
    let [pattern, path] = &args[..] else {
        eprintln!("usage: count_matches PATTERN FILE | --generate N KIND");
        std::process::exit(2);
    };
    let pattern = FilterPattern::parse(pattern).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    let text = std::fs::read_to_string(path).expect("a readable UTF-8 file");
    let started = Instant::now();
    let count = text.lines().filter(|l| pattern.matches(l)).count();
    let secs = started.elapsed().as_secs_f64();
    println!("{count}");
    eprintln!(
        "{:.0} MB/s ({} bytes in {:.3} s)",
        text.len() as f64 / secs / 1e6,
        text.len(),
        secs
    );
}
