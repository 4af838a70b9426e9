//! What the columnar tier's tests share: writing a mix of flow records and other lines
//! into a group, and everything the read paths answer for it.

#![allow(dead_code)] // each test file uses its own share

use std::path::{Path, PathBuf};

use nettrail_store::{
    Direction, EventKey, FileStore, LogStore, NewEvent, NewGroup, PageLimit, ScanRequest,
    StreamSelector,
};

pub const HOUR: i64 = 3_600_000;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn create(store: &FileStore, group: &str, streams: &[&str]) {
    store
        .create_group(
            NewGroup {
                name: group.into(),
                class: "STANDARD".into(),
                ..NewGroup::default()
            },
            now(),
        )
        .unwrap();
    for s in streams {
        store.create_stream(group, s, now()).unwrap();
    }
}

pub fn flow(i: i64, ts: i64) -> String {
    format!(
        "2 123456789010 eni-{:017x} 10.0.{}.{} 172.31.16.21 {} 22 6 {} {} {} {} {} OK",
        i % 5,
        i % 7,
        i % 250,
        40000 + i,
        i % 9 + 1,
        (i * 37) % 5000 + 40,
        ts / 1000,
        ts / 1000 + 60,
        if i % 4 == 0 { "REJECT" } else { "ACCEPT" }
    )
}

/// Writes `n` events into each stream, spread over three hours (out of order within a
/// batch, several events per timestamp), some of them not flow records.
pub fn write(store: &FileStore, group: &str, streams: &[&str], n: i64, base: i64, salt: i64) {
    for (s, stream) in streams.iter().enumerate() {
        let messages: Vec<(i64, String)> = (0..n)
            .map(|i| {
                let ts = base + ((i * 7919 + s as i64 * 31 + salt) % (3 * HOUR / 1000)) * 1000;
                let message = if i % 11 == 3 {
                    format!("a line that is not a flow record #{i} {salt}")
                } else {
                    flow(i + salt, ts)
                };
                (ts, message)
            })
            .collect();
        for chunk in messages.chunks(13) {
            let events: Vec<NewEvent<'_>> = chunk
                .iter()
                .map(|(ts, m)| NewEvent {
                    timestamp: *ts,
                    message: m.as_str().into(),
                })
                .collect();
            store.append(group, stream, &events).unwrap();
        }
    }
}

pub type Row = (String, EventKey, i64, String);

/// A stream's name, first and last event timestamps and last ingestion time.
pub type StreamTimes = (String, Option<i64>, Option<i64>, Option<i64>);

/// A read of every stream of `group`, at no time bound, in `direction`.
pub fn whole_group(group: &str, direction: Direction) -> ScanRequest {
    ScanRequest {
        group: group.into(),
        streams: StreamSelector::All,
        start_time: None,
        end_time: None,
        from: None,
        direction,
    }
}

pub fn scan_all(store: &FileStore, request: &ScanRequest, page_size: usize) -> Vec<Row> {
    let mut out = Vec::new();
    let mut request = request.clone();
    loop {
        let limit = PageLimit {
            max_events: page_size,
            ..PageLimit::UNLIMITED
        };
        let page = store.scan(&request, &|_| true, limit).unwrap();
        let mut rows: Vec<Row> = page
            .events
            .iter()
            .map(|e| {
                (
                    e.stream.to_string(),
                    e.key,
                    e.ingestion_time,
                    e.message.clone(),
                )
            })
            .collect();
        if request.direction == Direction::Backward {
            rows.reverse();
        }
        let Some(last) = rows.last() else { break };
        request.from = Some(last.1);
        out.extend(rows);
        if !page.more {
            break;
        }
    }
    out
}

/// Everything the read paths answer for `group`.
#[derive(Debug, PartialEq)]
pub struct Answers {
    pub forward: Vec<Row>,
    pub backward_paged: Vec<Row>,
    pub forward_paged: Vec<Row>,
    pub one_stream: Vec<Row>,
    pub window: Vec<Row>,
    pub filtered: Vec<Row>,
    pub committed: Vec<(u64, String)>,
    pub backlogs: Vec<u64>,
    pub streams: Vec<StreamTimes>,
}

pub fn answers(store: &FileStore, group: &str, base: i64) -> Answers {
    let request = |direction| whole_group(group, direction);
    let forward = scan_all(store, &request(Direction::Forward), usize::MAX);
    let mut one = request(Direction::Forward);
    one.streams = StreamSelector::Names(vec!["b".into()]);
    let mut window = request(Direction::Backward);
    window.start_time = Some(base + HOUR / 2);
    window.end_time = Some(base + 2 * HOUR + 17_000);
    let filtered = store
        .scan(
            &request(Direction::Forward),
            &|m| m.contains("REJECT"),
            PageLimit::UNLIMITED,
        )
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.stream.to_string(), e.key, e.ingestion_time, e.message))
        .collect();
    let mut committed = Vec::new();
    let mut after = 0;
    loop {
        let limit = PageLimit {
            max_events: 23,
            ..PageLimit::UNLIMITED
        };
        let page = store.read_committed(group, after, limit).unwrap();
        committed.extend(page.events.iter().map(|e| (e.key.seq, e.message.clone())));
        if page.events.is_empty() {
            break;
        }
        after = page.read_to;
    }
    let seqs: Vec<u64> = committed.iter().map(|(s, _)| *s).collect();
    let backlogs = [
        0,
        seqs[seqs.len() / 3],
        seqs[seqs.len() / 2],
        *seqs.last().unwrap(),
    ]
    .iter()
    .map(|&after| store.backlog(group, after).unwrap().events)
    .collect();
    let streams = store
        .streams(group)
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.name,
                s.first_event_timestamp,
                s.last_event_timestamp,
                s.last_ingestion_time,
            )
        })
        .collect();
    Answers {
        forward,
        backward_paged: scan_all(store, &request(Direction::Backward), 7),
        forward_paged: scan_all(store, &request(Direction::Forward), 10),
        one_stream: scan_all(store, &one, 9),
        window: scan_all(store, &window, 5),
        filtered,
        committed,
        backlogs,
        streams,
    }
}

pub fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
