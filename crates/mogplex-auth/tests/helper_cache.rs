//! The credential helper's cache and its one-at-a-time rule, with real scripts: a key is used
//! until it expires (by default 5 minutes) without running the helper again, [`invalidate`]
//! (what a 401 does) runs it again, and two threads asking at once run it once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::helper::{invalidate, key};
use mogplex_auth::{MapEnv, Provider};
use std::os::unix::fs::PermissionsExt;

fn counting_script(dir: &std::path::Path, output: &str) -> (String, std::path::PathBuf) {
    let count = dir.join("runs");
    let p = dir.join("helper");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho run >> '{}'\nsleep 0.2\necho '{output}'\n",
            count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    (p.display().to_string(), count)
}

fn runs(count: &std::path::Path) -> usize {
    std::fs::read_to_string(count)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

// One test: the cache is per process, so separate tests would share it.
#[test]
fn cached_until_invalidated_and_one_run_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (helper, count) = counting_script(dir.path(), "sk-cached-0123456789");
    let env = MapEnv::new([("OPENAI_API_KEY_HELPER", helper.as_str())]);

    let k = key(&env, Provider::OpenAi).unwrap().unwrap();
    assert_eq!(k.expose(), "sk-cached-0123456789");
    let k = key(&env, Provider::OpenAi).unwrap().unwrap();
    assert_eq!(k.expose(), "sk-cached-0123456789");
    assert_eq!(runs(&count), 1, "the second call used the cache");

    invalidate("OPENAI_API_KEY_HELPER");
    std::thread::scope(|s| {
        let a = s.spawn(|| key(&env, Provider::OpenAi).unwrap().unwrap());
        let b = s.spawn(|| key(&env, Provider::OpenAi).unwrap().unwrap());
        assert_eq!(a.join().unwrap().expose(), "sk-cached-0123456789");
        assert_eq!(b.join().unwrap().expose(), "sk-cached-0123456789");
    });
    assert_eq!(
        runs(&count),
        2,
        "invalidated: run again, once for both threads"
    );

    // A token that expires in a second is used until then, then fetched again.
    let dir2 = tempfile::tempdir().unwrap();
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (helper2, count2) = counting_script(
        dir2.path(),
        &format!("{{\"token\":\"gsk_short-0123456789\",\"expires_at\":\"{soon}\"}}"),
    );
    let env2 = MapEnv::new([("GROQ_API_KEY_HELPER", helper2.as_str())]);
    key(&env2, Provider::Groq).unwrap().unwrap();
    key(&env2, Provider::Groq).unwrap().unwrap();
    assert_eq!(runs(&count2), 1);
    // Past its expires_at the next run prints the same (now past) time: refused, not reused.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let e = key(&env2, Provider::Groq).unwrap().unwrap_err();
    assert_eq!(runs(&count2), 2);
    assert!(e.to_string().contains("expired at"), "{e}");

    // Unset: no helper, no run.
    assert!(key(&MapEnv::default(), Provider::OpenAi).is_none());
}
