//! `mogplex-server audit`: the audit log, as lines or as JSON.

use super::args::AuditArgs;
use super::{Failure, connect, storage};
use mogplex_server::crypto::now;

/// `30m`, `24h`, `7d`, or an RFC 3339 time or a date, as unix seconds.
fn since(s: &str) -> Result<i64, Failure> {
    let s = s.trim();
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        _ => None,
    };
    if let Some(last) = s.chars().last()
        && let Some(mult) = unit(last)
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
    {
        return Ok(now() - n.saturating_mul(mult));
    }
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &rfc) {
        return Ok(t.unix_timestamp());
    }
    if let Ok(t) = time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &rfc) {
        return Ok(t.unix_timestamp());
    }
    Err(Failure::new(format!("--since `{s}` is not a time"))
        .hint("use a duration back from now (30m, 24h, 7d) or a date (2026-12-01 or 2026-12-01T08:00:00Z)")
        .usage())
}

fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

pub async fn run(a: AuditArgs) -> Result<(), Failure> {
    let from = since(&a.since)?;
    let db = connect(&a.db.database).await?;
    let user = a.user.as_deref().map(|u| u.trim().to_lowercase());
    let rows = db
        .audit_since(from, user.as_deref(), a.limit.max(1))
        .await
        .map_err(storage)?;
    if a.db.json {
        let v = serde_json::json!({ "events": rows });
        println!("{v}");
        return Ok(());
    }
    for r in rows {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            when(r.at),
            r.kind,
            r.outcome,
            r.email.or(r.user_id).unwrap_or_else(|| "-".into()),
            r.client.unwrap_or_else(|| "-".into()),
            r.detail
        );
    }
    Ok(())
}
