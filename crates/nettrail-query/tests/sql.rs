//! SQL over both tiers: the same answers whether events are in parts or in the tail,
//! each event counted once, read-only.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use nettrail_query::{QueryEngine, QueryError, QueryOptions};
use nettrail_store::{FileStore, FileStoreConfig, LogStore, NewEvent, NewGroup};

const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn flow(i: i64, ts: i64) -> String {
    format!(
        "2 123456789010 eni-{:017x} 10.0.{}.{} 172.31.16.21 {} {} 6 {} {} {} {} {} OK",
        i % 3,
        i % 7,
        i % 250,
        40000 + i,
        if i % 5 == 0 { 22 } else { 443 },
        i % 9 + 1,
        i * 10,
        ts / 1000,
        ts / 1000 + 60,
        if i % 4 == 0 { "REJECT" } else { "ACCEPT" }
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// The start of the first hour of events.
    base: i64,
    store: FileStore,
    engine: QueryEngine,
}

/// A flow-log group with `n` events over three hours, the first `compacted` of them
/// compacted into parts, the rest in the row tail.
fn fixture(n: i64, compacted: i64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileStoreConfig::new(dir.path());
    config.compaction = false;
    config.part_row_group_rows = 64;
    let store = FileStore::open(config).unwrap();
    store
        .create_group(
            NewGroup {
                name: "/vpc/flows".into(),
                class: "STANDARD".into(),
                ..NewGroup::default()
            },
            now(),
        )
        .unwrap();
    store
        .create_stream("/vpc/flows", "eni-a-all", now())
        .unwrap();
    let base = (now() - 5 * HOUR) / HOUR * HOUR;
    let write = |range: std::ops::Range<i64>| {
        let messages: Vec<(i64, String)> = range
            .map(|i| {
                let ts = base + (i * 7919 % (3 * HOUR / 1000)) * 1000;
                (ts, flow(i, ts))
            })
            .collect();
        let events: Vec<NewEvent<'_>> = messages
            .iter()
            .map(|(ts, m)| NewEvent {
                timestamp: *ts,
                message: m.as_str().into(),
            })
            .collect();
        if !events.is_empty() {
            store.append("/vpc/flows", "eni-a-all", &events).unwrap();
        }
    };
    write(0..compacted);
    store.compact(true).unwrap();
    write(compacted..n);
    let engine = QueryEngine::new(
        Arc::new(store.clone()) as Arc<dyn LogStore>,
        QueryOptions::default(),
    );
    Fixture {
        _dir: dir,
        base,
        store,
        engine,
    }
}

/// `query` with `{base}` (the first hour's start, Unix ms) and the second hour's
/// `{hour1}` (`HH`), `{date1}` (`YYYY-MM-DD`) and `{day1}` (`YYYY/MM/DD`) filled in.
fn placeholders(query: &str, base: i64) -> String {
    let hour1 = chrono::DateTime::from_timestamp_millis(base + HOUR).unwrap();
    query
        .replace("{base}", &base.to_string())
        .replace("{hour1}", &hour1.format("%H").to_string())
        .replace("{date1}", &hour1.format("%Y-%m-%d").to_string())
        .replace("{day1}", &hour1.format("%Y/%m/%d").to_string())
}

fn run_i64(engine: &QueryEngine, sql: &str) -> Vec<i64> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(engine.run(sql)).unwrap();
    out.batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// Every query answers the same whether none, some or all events are compacted.
#[test]
fn answers_do_not_depend_on_the_tier() {
    let queries = [
        "SELECT count(*) FROM vpc_flows WHERE timestamp >= {base} + 3600000 AND timestamp < {base} + 7200000",
        "SELECT count(*) FROM vpc_flows WHERE timestamp BETWEEN {base} AND {base} + 1799999",
        "SELECT count(*) FROM vpc_flows",
        "SELECT count(*) FROM \"/vpc/flows\" WHERE action = 'REJECT'",
        "SELECT sum(bytes) FROM vpc_flows WHERE dstport = 22",
        "SELECT count(DISTINCT srcaddr) FROM vpc_flows",
        "SELECT sum(packets) FROM vpc_flows GROUP BY interface_id ORDER BY interface_id",
        "SELECT count(*) FROM vpc_flows WHERE \"aws-service\" = 'vpcflowlogs' AND year >= '2024'",
        "SELECT count(*) FROM vpc_flows WHERE message IS NOT NULL",
        "SELECT max(event_seq) - min(event_seq) + 1 FROM vpc_flows",
        // Partition columns leave out parts and never rows.
        "SELECT count(*) FROM vpc_flows WHERE hour = '{hour1}' AND date = DATE('{date1}')",
        "SELECT count(*) FROM vpc_flows_by_day WHERE day = '{day1}' AND region = 'us-east-1'",
        "SELECT count(*) FROM vpc_flows WHERE date > current_date - interval '7' day",
        "SELECT count(*) FROM vpc_flows WHERE \"aws-region\" = 'nowhere-1'",
    ];
    let mut base = 0;
    let answers: Vec<Vec<Vec<i64>>> = [0, 300, 1000]
        .iter()
        .map(|&compacted| {
            let f = fixture(1000, compacted);
            base = f.base;
            queries
                .iter()
                .map(|q| run_i64(&f.engine, &placeholders(q, f.base)))
                .collect()
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let a = &answers[0];
    let in_window = |lo: i64, hi: i64| {
        (0..1000i64)
            .filter(|i| (lo..hi).contains(&(i * 7919 % 10800)))
            .count() as i64
    };
    assert_eq!(
        a[0],
        [in_window(3600, 7200)],
        "time predicates prune, never lose rows"
    );
    assert_eq!(a[1], [in_window(0, 1800)]);
    let a = &a[2..];
    assert_eq!(a[0], [1000]);
    assert_eq!(a[1], [250]);
    assert_eq!(
        a[2],
        [(0..1000)
            .filter(|i| i % 5 == 0)
            .map(|i| i * 10)
            .sum::<i64>()]
    );
    assert_eq!(a[4].len(), 3);
    assert_eq!(a[5], [1000]);
    assert_eq!(a[6], [0], "flow records are held as their columns only");
    assert_eq!(a[7], [1000]);
    assert_eq!(a[8], [in_window(3600, 7200)]);
    let day_of = |offset_s: i64| (base / 1000 + offset_s).div_euclid(86_400);
    let same_day_as_hour1 = (0..1000i64)
        .filter(|i| day_of(i * 7919 % 10800) == day_of(3600))
        .count() as i64;
    assert_eq!(a[9], [same_day_as_hour1]);
    assert_eq!(a[10], [1000]);
    assert_eq!(a[11], [0]);
}

#[test]
fn queries_are_read_only_and_errors_say_what_is_wrong() {
    let f = fixture(10, 5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for sql in [
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO vpc_flows SELECT * FROM vpc_flows",
        "DROP TABLE vpc_flows",
        "SET datafusion.execution.batch_size = 1",
        "COPY (SELECT 1) TO '/tmp/nettrail-must-not-exist.csv'",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM no_such_group",
        "SELEKT 1",
    ] {
        let err = rt.block_on(f.engine.run(sql)).unwrap_err();
        assert!(matches!(err, QueryError::Invalid(_)), "{sql}: {err:?}");
    }
    drop(f.store);
}

#[test]
fn a_result_bigger_than_allowed_is_refused() {
    let f = fixture(200, 100);
    let engine = QueryEngine::new(
        Arc::new(f.store.clone()) as Arc<dyn LogStore>,
        QueryOptions {
            max_result_rows: 50,
            ..QueryOptions::default()
        },
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(engine.run("SELECT * FROM vpc_flows"))
        .unwrap_err();
    assert!(err.to_string().contains("more than 50 rows"), "{err}");
    let ok = rt
        .block_on(engine.run("SELECT * FROM vpc_flows LIMIT 10"))
        .unwrap();
    assert_eq!(ok.rows(), 10);
    assert!(ok.bytes_scanned > 0);
}

/// The cases of a golden file (see `tests/golden/athena-functions.slt`): whether an
/// error is expected, the SQL, and the expected rows or error text.
fn golden_cases(text: &str) -> Vec<(bool, String, String)> {
    let mut cases = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let expect_error = match line.trim() {
            "query" => false,
            "error" => true,
            "" => continue,
            l if l.starts_with('#') => continue,
            other => panic!("golden file: unexpected line {other:?}"),
        };
        let sql: Vec<&str> = lines.by_ref().take_while(|l| *l != "----").collect();
        let mut expected = Vec::new();
        while let Some(l) = lines.next_if(|l| !l.trim().is_empty()) {
            expected.push(l);
        }
        cases.push((expect_error, sql.join("\n"), expected.join("\n")));
    }
    cases
}

#[test]
fn athena_functions_golden() {
    let f = fixture(10, 5);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let text = include_str!("golden/athena-functions.slt");
    let cases = golden_cases(text);
    assert!(cases.len() >= 10);
    for (expect_error, sql, expected) in cases {
        match rt.block_on(f.engine.run(&sql)) {
            Ok(out) if !expect_error => {
                let mut rows = Vec::new();
                for batch in &out.batches {
                    for row in nettrail_query::result::rows_as_text(batch).unwrap() {
                        let row: Vec<String> = row
                            .into_iter()
                            .map(|v| v.unwrap_or_else(|| "NULL".into()))
                            .collect();
                        rows.push(row.join(" | "));
                    }
                }
                assert_eq!(rows.join("\n"), expected, "{sql}");
            }
            Ok(out) => panic!("{sql}: expected an error, got {} rows", out.rows()),
            Err(e) if expect_error => {
                assert!(e.to_string().contains(&expected), "{sql}: {e}")
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
}
