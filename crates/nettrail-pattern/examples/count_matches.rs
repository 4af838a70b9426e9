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
    // Stream through one reused buffer, whole lines at a time, as a log reader would.
    let mut file = std::fs::File::open(path).expect("a readable file");
    let mut buf = vec![0u8; 1 << 20];
    let (mut filled, mut count, mut total) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    loop {
        let n = std::io::Read::read(&mut file, &mut buf[filled..]).expect("read");
        filled += n;
        total += n;
        let end = if n == 0 {
            filled
        } else {
            memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1)
        };
        let chunk = std::str::from_utf8(&buf[..end]).expect("UTF-8 text");
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', chunk.as_bytes())
            .chain((end > 0 && !chunk.ends_with('\n')).then_some(end))
        {
            if pattern.matches(&chunk[start..nl]) {
                count += 1;
            }
            start = nl + 1;
        }
        buf.copy_within(end..filled, 0);
        filled -= end;
        if n == 0 {
            break;
        }
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a line longer than the buffer
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{count}");
    eprintln!(
        "{:.0} MB/s ({total} bytes in {secs:.3} s)",
        total as f64 / secs / 1e6
    );
}
