//! The audit trail.

use super::*;

pub(crate) async fn audit_log_pages_by_cursor(t: TestDb) -> TestDb {
    let audit = AuditLog::new(t.db.clone());
    for i in 0..5 {
        let actor = if i % 2 == 0 { "alice" } else { "bob" };
        audit.record(Some(actor), "thing.done", Some(&format!("things/{i}")), json!({"i": i})).await.unwrap();
    }
    audit.record(None, "system.boot", None, json!(null)).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    let filter = AuditFilter { action: Some("thing.done".into()), limit: Some(2), ..AuditFilter::default() };
    loop {
        let page = audit.query(&filter, cursor.as_deref()).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.details["i"].as_i64().unwrap()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, [4, 3, 2, 1, 0], "newest first, each once");
    let alice = AuditFilter { actor: Some("alice".into()), ..AuditFilter::default() };
    assert_eq!(audit.query(&alice, None).await.unwrap().items.len(), 3);
    let future = AuditFilter { since: Some("2999-01-01T00:00:00Z".into()), ..AuditFilter::default() };
    assert!(audit.query(&future, None).await.unwrap().items.is_empty());
    let all = audit.query(&AuditFilter::default(), None).await.unwrap();
    assert_eq!(all.items.len(), 6);
    assert_eq!(all.items[0].action, "system.boot");
    assert!(all.next_cursor.is_none());
    let err = audit.query(&AuditFilter::default(), Some("garbage!")).await.unwrap_err();
    assert_eq!(ApiError::from(err).status(), StatusCode::BAD_REQUEST);
    let bad_since = AuditFilter { since: Some("yesterday".into()), ..AuditFilter::default() };
    assert!(matches!(audit.query(&bad_since, None).await, Err(DbError::InvalidInput { field: "since", .. })));
    t
}

pub(crate) async fn audit_events_stay_small_whatever_they_are_given(t: TestDb) -> TestDb {
    let audit = AuditLog::new(t.db.clone());
    let huge = "x".repeat(1 << 20);
    let event = audit.record(Some(&huge), &huge, Some(&huge), json!({"username": huge})).await.unwrap();
    assert_eq!(event.details["truncated"], json!(true));
    assert_eq!(event.details["bytes"].as_u64().unwrap(), (1 << 20) + 15);
    let page = audit.query(&AuditFilter::default(), None).await.unwrap();
    let stored = &page.items[0];
    assert_eq!(stored.actor.as_deref().map(str::len), Some(255));
    assert_eq!(stored.action.len(), 255);
    assert_eq!(stored.resource.as_deref().map(str::len), Some(1024));
    assert!(stored.details.to_string().len() < 1024, "{}", stored.details);
    let small = audit.record(None, "thing.done", None, json!({"i": 1})).await.unwrap();
    assert_eq!(small.details, json!({"i": 1}));
    t
}
