//! Any bytes as a filter pattern and an event: parsing may refuse the pattern, nothing
//! panics, and an accepted pattern's printed form parses back to the same pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nettrail_pattern::FilterPattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the pattern, the rest the event.
    let (pattern, event) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(parsed) = FilterPattern::parse(pattern) else {
        return;
    };
    let _ = parsed.matches(event);
    let _ = parsed.extracted_values(event);
    let _ = parsed.metric_value("$1", event);
    let _ = parsed.metric_value("$.a", event);
    let printed = parsed.to_string();
    let reparsed = FilterPattern::parse(&printed).expect("a printed pattern parses");
    assert!(parsed == reparsed, "{pattern:?} printed as {printed:?} parses differently");
});
