//! Any bytes as a Logs Insights query and events: compiling may refuse the query,
//! nothing panics or overflows the stack, and a compiled query runs over the events.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use nettrail_insights::{Compiled, InputEvent};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the query, each further line an event.
    let (query, events) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(compiled) = Compiled::new(query, Some(100)) else {
        return;
    };
    let mut run = compiled.run(0, i64::MAX);
    let log: Arc<str> = Arc::from("123456789012:/fuzz");
    for (i, line) in events.lines().enumerate() {
        let more = run.push(InputEvent {
            timestamp: 1_700_000_000_000 - i as i64 * 1000,
            ingestion_time: 1_700_000_000_000,
            stream: Arc::from("s"),
            log: Arc::clone(&log),
            message: line.to_owned(),
            ptr: i.to_string(),
        });
        if !more {
            break;
        }
    }
    let _ = run.partial_rows();
    let output = run.finish();
    assert!(output.rows.len() <= 100);
});
