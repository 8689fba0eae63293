//! The version 2 credential store on real files: version 1 read and rewritten as version 2 with
//! unknown keys kept, SPEC section 3's refusals through the new store, and the credential
//! operations (sign-ins added and replaced per issuer, lookups by email or id, logout and the
//! default account, provider keys).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mogplex_auth::MogplexHome;
use mogplex_auth::credentials::Stored;
use mogplex_auth::credentials::ops::{self, AccountMatch, SignInOutcome};
use mogplex_auth::credentials::{CredentialError, CredentialStore, FileStore};
use mogplex_auth::secret::Secret;
use mogplex_auth::store::StoreError;
use mogplex_auth::{Account, AccountEntry, MogplexCredentialKind};
use serde_json::{Value, json};
use std::os::unix::fs::{PermissionsExt, symlink};

const ONE: &str = "http://127.0.0.1:9001";
const TWO: &str = "http://127.0.0.1:9002";

fn setup() -> (tempfile::TempDir, MogplexHome, FileStore) {
    let dir = tempfile::tempdir().unwrap();
    let home = MogplexHome::at(dir.path().join("home"));
    let store = FileStore::new(&home);
    (dir, home, store)
}

fn write_private(home: &MogplexHome, text: &str) {
    home.ensure().unwrap();
    std::fs::write(home.auth_file(), text).unwrap();
    std::fs::set_permissions(home.auth_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn on_disk(home: &MogplexHome) -> Value {
    serde_json::from_str(&std::fs::read_to_string(home.auth_file()).unwrap()).unwrap()
}

fn person(issuer: &str, email: &str) -> AccountEntry {
    AccountEntry {
        issuer: issuer.into(),
        access_token: Some(Stored::Value(Secret::new(format!("at-{email}-{issuer}")))),
        refresh_token: Some(Stored::Value(Secret::new(format!("rt-{email}-{issuer}")))),
        account: Some(Account {
            id: Some(format!("id-{email}")),
            email: Some(email.into()),
            ..Account::default()
        }),
        ..AccountEntry::default()
    }
}

#[test]
fn a_version_1_file_is_read_as_one_account_and_rewritten_as_version_2_on_the_next_write() {
    let (_d, home, store) = setup();
    let v1 = json!({
        "version": 1, "future": {"x": 1},
        "mogplex": {"issuer": ONE, "access_token": "at-1", "refresh_token": "rt-1",
                    "account": {"id": "u1", "email": "ada@example.com", "name": "Ada"}, "later": true},
        "providers": {"openai": {"apiKey": "sk-1", "org": "o"}}
    });
    write_private(&home, &v1.to_string());
    let s: &dyn CredentialStore = &store;
    let loaded = s.load().unwrap();
    let accounts = ops::list_accounts(&loaded.doc);
    assert_eq!(accounts.len(), 1);
    assert!(accounts[0].is_default);
    assert_eq!(accounts[0].email.as_deref(), Some("ada@example.com"));
    assert_eq!(on_disk(&home), v1, "a read rewrites nothing");

    ops::store_provider_key(s, "groq", Secret::new("gsk_2")).unwrap();
    let v2 = on_disk(&home);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["store"], "file");
    assert!(v2.get("mogplex").is_none());
    assert_eq!(v2["future"]["x"], 1);
    assert_eq!(v2["accounts"][0]["id"], accounts[0].id);
    assert_eq!(v2["accounts"][0]["later"], true);
    assert_eq!(v2["accounts"][0]["account"]["name"], "Ada");
    assert_eq!(v2["accounts"][0]["refresh_token"], "rt-1");
    assert_eq!(v2["default_account"], accounts[0].id);
    assert_eq!(v2["providers"]["openai"]["org"], "o");
    assert_eq!(v2["providers"]["groq"]["apiKey"], "gsk_2");
    let mode = std::fs::metadata(home.auth_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn the_file_rules_of_spec_section_3_hold_for_the_new_store() {
    let (d, home, store) = setup();
    let s: &dyn CredentialStore = &store;

    // Control characters: refused, nothing written.
    let e = ops::store_provider_key(s, "openai", Secret::new("sk-a\nb")).unwrap_err();
    assert!(
        matches!(
            e,
            CredentialError::File(StoreError::ControlCharacters { .. })
        ),
        "{e}"
    );
    assert!(!e.to_string().contains("sk-a"));
    assert!(!home.auth_file().exists());

    // Readable by others: refused with the chmod fix, nothing overwritten.
    write_private(&home, r#"{"version":2}"#);
    std::fs::set_permissions(home.auth_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = s.load().unwrap_err();
    assert!(e.hint().unwrap().contains("chmod 600"), "{e}");
    assert!(ops::store_provider_key(s, "openai", Secret::new("sk-x")).is_err());
    assert_eq!(
        std::fs::read_to_string(home.auth_file()).unwrap(),
        r#"{"version":2}"#
    );

    // A symbolic link: refused, its target untouched.
    std::fs::remove_file(home.auth_file()).unwrap();
    let target = d.path().join("elsewhere.json");
    std::fs::write(&target, "{}").unwrap();
    symlink(&target, home.auth_file()).unwrap();
    assert!(matches!(
        s.load(),
        Err(CredentialError::File(StoreError::Symlink { .. }))
    ));
    assert!(ops::store_provider_key(s, "openai", Secret::new("sk-x")).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}");
    std::fs::remove_file(home.auth_file()).unwrap();

    // Corrupt: moved aside, reported, treated as nothing stored; never overwritten.
    write_private(
        &home,
        r#"{"version":2,"providers":{"openai":{"apiKey":"sk-lost"#,
    );
    let loaded = s.load().unwrap();
    let moved = loaded.moved_aside.expect("moved aside");
    assert!(loaded.doc.providers.is_empty());
    assert!(!moved.warning().contains("sk-lost"));
    assert!(
        std::fs::read_to_string(&moved.to)
            .unwrap()
            .contains("sk-lost")
    );

    // Newer than this mogplex: read where possible, never rewritten.
    write_private(
        &home,
        r#"{"version":3,"providers":{"openai":{"apiKey":"sk-new"}},"shape":"unknown"}"#,
    );
    let loaded = s.load().unwrap();
    assert_eq!(
        loaded.doc.provider_key("openai").unwrap().expose(),
        "sk-new"
    );
    let e = ops::store_provider_key(s, "groq", Secret::new("gsk_1")).unwrap_err();
    assert!(
        matches!(e, CredentialError::NewerVersion { version: 3, .. }),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("upgrade"));

    // Secrets in a store this mogplex does not know: not rewritten either.
    write_private(&home, r#"{"version":2,"store":"tpm"}"#);
    let e = ops::store_provider_key(s, "groq", Secret::new("gsk_1")).unwrap_err();
    assert!(matches!(e, CredentialError::UnknownStore { .. }), "{e}");
    assert_eq!(
        std::fs::read_to_string(home.auth_file()).unwrap(),
        r#"{"version":2,"store":"tpm"}"#
    );
}

#[test]
fn sign_ins_are_added_or_replaced_per_issuer_and_account() {
    let (_d, home, store) = setup();
    let s: &dyn CredentialStore = &store;
    let ada = ops::store_sign_in(s, person(ONE, "ada@example.com"))
        .unwrap()
        .value;
    assert_eq!(
        (ada.outcome, ada.accounts_on_issuer),
        (SignInOutcome::Added, 1)
    );
    let bob = ops::store_sign_in(s, person(ONE, "bob@example.com"))
        .unwrap()
        .value;
    assert_eq!(
        (bob.outcome, bob.accounts_on_issuer),
        (SignInOutcome::Added, 2)
    );
    // The same account signs in again: its entry is replaced, unknown keys kept.
    let mut v = on_disk(&home);
    v["accounts"][0]["future"] = json!(7);
    write_private(&home, &v.to_string());
    let mut again = person(ONE, "ada@example.com");
    again.access_token = Some(Stored::Value(Secret::new("at-ada-second")));
    let ada2 = ops::store_sign_in(s, again).unwrap().value;
    assert_eq!(ada2.entry_id, ada.entry_id);
    assert_eq!(
        (ada2.outcome, ada2.accounts_on_issuer),
        (SignInOutcome::Replaced, 2)
    );
    // The same person on another service is another account.
    let ada_two = ops::store_sign_in(s, person(TWO, "ada@example.com"))
        .unwrap()
        .value;
    assert_ne!(ada_two.entry_id, ada.entry_id);
    assert_eq!(
        (ada_two.outcome, ada_two.accounts_on_issuer),
        (SignInOutcome::Added, 1)
    );

    let doc = s.load().unwrap().doc;
    assert_eq!(doc.accounts.len(), 3);
    assert_eq!(
        doc.default_account.as_deref(),
        Some(ada_two.entry_id.as_str())
    );
    let a = doc.account(&ada.entry_id).unwrap();
    assert_eq!(a.bearer().unwrap().0.expose(), "at-ada-second");
    assert_eq!(a.extra["future"], 7);
    // Lists name accounts, never tokens.
    let listed = format!("{:?}", ops::list_accounts(&doc));
    assert!(
        !listed.contains("at-") && !listed.contains("rt-"),
        "{listed}"
    );

    // A personal access token whose account is unknown gets its own pat_ entry.
    let pat = AccountEntry::pat(ONE, Secret::new("mog_personal_token_value"));
    let stored = ops::store_sign_in(s, pat).unwrap().value;
    assert!(stored.entry_id.starts_with("pat_"));
    let doc = s.load().unwrap().doc;
    assert_eq!(
        doc.account(&stored.entry_id).unwrap().bearer().unwrap().1,
        MogplexCredentialKind::PersonalAccessToken
    );
}

#[test]
fn accounts_are_found_by_email_or_id_and_an_email_on_two_services_is_ambiguous() {
    let (_d, _home, store) = setup();
    let s: &dyn CredentialStore = &store;
    let ada1 = ops::store_sign_in(s, person(ONE, "ada@example.com"))
        .unwrap()
        .value;
    let ada2 = ops::store_sign_in(s, person(TWO, "ada@example.com"))
        .unwrap()
        .value;
    let bob = ops::store_sign_in(s, person(ONE, "bob@example.com"))
        .unwrap()
        .value;
    let doc = s.load_metadata().unwrap().doc;

    let one = |m: AccountMatch| match m {
        AccountMatch::One(a) => a.id,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        ops::find_account(&doc, "ada@example.com", None),
        AccountMatch::Ambiguous { matches } if matches.len() == 2
    ));
    assert_eq!(
        one(ops::find_account(&doc, "ADA@example.com", Some(TWO))),
        ada2.entry_id
    );
    assert_eq!(
        one(ops::find_account(&doc, &ada1.entry_id, None)),
        ada1.entry_id
    );
    assert_eq!(
        one(ops::find_account(&doc, "id-bob@example.com", None)),
        bob.entry_id
    );
    assert!(matches!(
        ops::find_account(&doc, "bob@example.com", Some(TWO)),
        AccountMatch::OtherIssuer { matches } if matches[0].issuer == ONE
    ));
    match ops::find_account(&doc, "cy@example.com", Some(ONE)) {
        AccountMatch::None { known } => {
            let mut names: Vec<_> = known.iter().map(|k| k.name().to_owned()).collect();
            names.sort();
            assert_eq!(names, ["ada@example.com", "bob@example.com"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn logout_moves_the_default_within_its_service_and_logout_all_keeps_provider_keys() {
    let (_d, _home, store) = setup();
    let s: &dyn CredentialStore = &store;
    let ada = ops::store_sign_in(s, person(ONE, "ada@example.com"))
        .unwrap()
        .value;
    let bob = ops::store_sign_in(s, person(ONE, "bob@example.com"))
        .unwrap()
        .value;
    let cy = ops::store_sign_in(s, person(TWO, "cy@example.com"))
        .unwrap()
        .value;
    ops::store_provider_key(s, "openai", Secret::new("sk-stays")).unwrap();
    // Used in the order bob, cy, ada: ada is the default.
    for id in [&bob.entry_id, &cy.entry_id, &ada.entry_id] {
        ops::set_default_account(s, id).unwrap();
    }
    let out = ops::logout(s, &ada.entry_id).unwrap().value.unwrap();
    assert_eq!(
        out.refresh_token.unwrap().expose(),
        format!("rt-ada@example.com-{ONE}")
    );
    // Not cy (another service, used more recently): bob.
    assert_eq!(out.new_default.as_deref(), Some(bob.entry_id.as_str()));
    assert!(ops::logout(s, &ada.entry_id).unwrap().value.is_none());
    let out = ops::logout(s, &bob.entry_id).unwrap().value.unwrap();
    assert_eq!(out.new_default, None, "no account of that service is left");

    let e = ops::set_default_account(s, &ada.entry_id).unwrap_err();
    assert!(matches!(e, CredentialError::NoSuchAccount { .. }));
    assert!(e.hint().unwrap().contains("mogplex account list"));

    let all = ops::logout_all(s).unwrap().value;
    assert_eq!(all.accounts.len(), 1);
    let doc = s.load().unwrap().doc;
    assert!(doc.accounts.is_empty() && doc.default_account.is_none());
    assert_eq!(doc.provider_key("openai").unwrap().expose(), "sk-stays");
    assert!(ops::remove_provider_key(s, "openai").unwrap().value);
    assert!(!ops::remove_provider_key(s, "openai").unwrap().value);
}
