//! Which queries compile to SQL over a flow-log table, and the statement's shape.

use nettrail_insights::sql::{SqlPlan, SqlValue};
use nettrail_insights::Compiled;

fn plan(query: &str) -> Option<SqlPlan> {
    Compiled::new(query, None)
        .unwrap()
        .flow_sql("\"/vpc\"", 0, 9)
}

#[test]
fn filters_and_stats_over_flow_fields_compile() {
    let p = plan("filter action = 'REJECT' and dstPort in [22, 3389] | stats count(*) as n, sum(bytes) by srcAddr, bin(5m) | sort n desc | limit 10").unwrap();
    assert_eq!(
        p.keys,
        [
            ("srcAddr".to_owned(), SqlValue::Text),
            ("bin(5m)".to_owned(), SqlValue::Time)
        ]
    );
    assert_eq!(
        p.items,
        [
            ("n".to_owned(), SqlValue::Number),
            ("sum(bytes)".to_owned(), SqlValue::Number)
        ]
    );
    assert!(p.sql.contains("GROUP BY 1, 2"), "{}", p.sql);
    assert!(p.sql.contains("\"dstport\" = 22"), "{}", p.sql);
    assert!(
        p.sql.contains("rank() OVER (ORDER BY c2 DESC NULLS LAST)"),
        "{}",
        p.sql
    );
    assert!(p.sql.ends_with("nettrail_rank <= 10"), "{}", p.sql);
}

#[test]
fn what_does_not_compile_is_left_to_the_pipeline() {
    for query in [
        "fields srcAddr",
        "stats count(*) by bin(1w)",
        "filter isIpv4InSubnet(srcAddr, '10.0.0.0/8') | stats count(*)",
        "stats min(srcAddr)",
        "stats count(*) by @message",
        "parse @message '* *' as a, b | stats count(*) by a",
        "stats sum(bytes) / count(*) as mean",
        "filter bytes > -5 | stats count(*)",
    ] {
        assert!(plan(query).is_none(), "{query}");
    }
}

#[test]
fn a_dash_compares_as_the_language_compares_it() {
    // `-` is text: unequal to anything else, and ordered as text against text.
    let p = plan("filter bytes != 5 | stats count(*)").unwrap();
    assert!(
        p.sql.contains("WHEN \"bytes\" IS NULL THEN true"),
        "{}",
        p.sql
    );
    let p = plan("filter bytes < '5' | stats count(*)").unwrap();
    assert!(
        p.sql.contains("WHEN \"bytes\" IS NULL THEN true"),
        "{}",
        p.sql
    );
    let p = plan("filter bytes < 5 | stats count(*)").unwrap();
    assert!(
        p.sql.contains("WHEN \"bytes\" IS NULL THEN false"),
        "{}",
        p.sql
    );
}
