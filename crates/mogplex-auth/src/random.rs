//! Random names: temp files, session ids. Low level on purpose: anything may use it.

/// Lowercase hex of `n` random bytes. Falls back to the clock if the OS has no randomness to
/// give (names only need to be unlikely to collide, and creation is exclusive anyway).
pub fn hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if getrandom::fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
