//! "Did you mean …": which of some names is closest to what the user typed, for subcommands and
//! models alike.

/// The optimal string alignment distance between `a` and `b`, ignoring ASCII case: insertions,
/// deletions, substitutions and swaps of two neighbours each count one (`logni` → `login` is 1).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Three rows of the dynamic-programming table: two back, one back, this one.
    let mut two_back: Vec<usize> = vec![0; b.len() + 1];
    let mut one_back: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (one_back[j] + 1)
                .min(row[j - 1] + 1)
                .min(one_back[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(two_back[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut two_back, &mut one_back);
        std::mem::swap(&mut one_back, &mut row);
    }
    one_back[b.len()]
}

/// How many leading characters `a` and `b` share (ignoring ASCII case).
fn shared_prefix(a: &str, b: &str) -> usize {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x.eq_ignore_ascii_case(y))
        .count()
}

/// How far `candidate` is from `typed`: the edit distance to the whole name, or to the part after
/// its first `/` when that is closer (`gpt-4.1` is 0 from `mogplex/gpt-4.1`).
pub fn model_distance(typed: &str, candidate: &str) -> usize {
    let whole = distance(typed, candidate);
    match candidate.split_once('/') {
        Some((_, rest)) if !typed.contains('/') => whole.min(distance(typed, rest)),
        _ => whole,
    }
}

/// Whether a distance is small enough to suggest the name as what was meant: one edit for short
/// words, two from eight characters on, a third from fifteen.
pub fn is_close(typed: &str, distance: usize) -> bool {
    let len = typed.chars().count();
    distance <= 1 + usize::from(len >= 8) + usize::from(len >= 15)
}

/// The candidates ordered closest first (by `distance_of`, then by the longest shared prefix,
/// then in the order given), without repeats, at most `n`.
pub fn ranked<'a>(
    typed: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    distance_of: impl Fn(&str, &str) -> usize,
    n: usize,
) -> Vec<(&'a str, usize)> {
    let mut scored: Vec<(usize, usize, usize, &'a str)> = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        if scored.iter().any(|(.., seen)| *seen == c) {
            continue;
        }
        scored.push((
            distance_of(typed, c),
            usize::MAX - shared_prefix(typed, c),
            i,
            c,
        ));
    }
    scored.sort();
    scored
        .into_iter()
        .take(n)
        .map(|(d, _, _, c)| (c, d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("logni", "login"), 1);
        assert_eq!(distance("Login", "login"), 0);
        assert_eq!(distance("exce", "exec"), 1);
        assert_eq!(distance("logot", "logout"), 1);
        assert_eq!(distance("hello", "help"), 2);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(model_distance("gpt-4.1", "mogplex/gpt-4.1"), 0);
        assert_eq!(model_distance("mogplex/ecoh", "mogplex/echo"), 1);
    }

    #[test]
    fn closeness_grows_with_length() {
        assert!(is_close("logni", 1));
        assert!(!is_close("hello", 2));
        assert!(is_close("credentails", 2));
        assert!(!is_close("credentails", 3));
    }

    #[test]
    fn ranked_by_distance_then_shared_prefix_then_order() {
        let models = [
            "mogplex/echo",
            "gpt-4.1-mini",
            "mogplex/gpt-4.1",
            "gpt-4.1-mini",
        ];
        assert_eq!(
            ranked("gpt-4.1", models, model_distance, 3),
            vec![
                ("mogplex/gpt-4.1", 0),
                ("gpt-4.1-mini", 5),
                ("mogplex/echo", 7)
            ]
        );
        assert_eq!(
            ranked("o4", ["o3", "o4-mini", "gpt-4.1"], distance, 2),
            vec![("o3", 1), ("o4-mini", 5)]
        );
    }
}
