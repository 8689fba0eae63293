//! Argon2id password hashing on a small pool of dedicated threads, never more at once.
//!
//! Each hash is memory-hard (19 MiB with the default parameters): run one per request and a burst
//! of sign-ins takes gigabytes, which the allocator then keeps. Here at most one hash runs per
//! core (two at least, four at most), each on its own long-lived thread, so the memory in use is
//! bounded by the pool and reused; up to [`QUEUE`] more wait their turn, and anything beyond is
//! refused at once with [`Busy`] (the sign-in page answers 503 with `Retry-After`).

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

/// Hashes waiting for a thread before further ones are refused.
pub const QUEUE: usize = 32;

/// Every hashing thread is busy and the queue is full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy checking other passwords; try again in a moment")]
pub struct Busy;

type Job = Box<dyn FnOnce() + Send>;

/// The pool's threads, started on first use.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 4)
}

fn pool() -> &'static SyncSender<Job> {
    static POOL: OnceLock<SyncSender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password thread: {e}");
            }
        }
        tx
    })
}

/// Runs `f` on the pool: its result, or [`Busy`] when the queue is full.
async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    match pool().try_send(job) {
        Ok(()) => rx.await.map_err(|_| Busy),
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
    }
}

pub async fn hash(password: String) -> Result<String, String> {
    run(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Whether `password` matches `hash`. A malformed hash never matches.
pub async fn verify(password: String, hash: String) -> Result<bool, Busy> {
    run(move || verify_here(password.as_bytes(), &hash)).await
}

thread_local! {
    /// The Argon2 working memory of this pool thread, kept between hashes: allocating 19 MiB per
    /// hash left the allocator holding several of them per thread.
    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `PasswordVerifier::verify_password`, with this thread's reused working memory.
fn verify_here(password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        parsed.version.map(Version::try_from).transpose(),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let mut out = vec![0u8; expected.len()];
    let computed = MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(
                password,
                salt.as_ref(),
                &mut out,
                &mut memory[..blocks],
            )
            .is_ok()
    });
    computed
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            out.as_slice(),
            expected.as_bytes(),
        ))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn verifies_what_it_hashed_and_nothing_else() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert_eq!(
            super::verify("correct horse".into(), h.clone()).await,
            Ok(true)
        );
        assert_eq!(super::verify("wrong horse".into(), h).await, Ok(false));
        assert_eq!(
            super::verify("x".into(), "not a hash".into()).await,
            Ok(false)
        );
    }
}
