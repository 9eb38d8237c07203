//! "Did you mean …": the nearest of the names a field or tool could have been.

/// The candidate `word` was most likely meant to be, if one is close enough: equal ignoring
/// case, `_` and `-` (`timeoutMs` → `timeout_ms`); within a few edits (one for words of up to
/// three letters, two up to six, three beyond); or a prefix either way (`timeout` →
/// `timeout_ms`). Ties go to the earlier candidate.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_n = normalize(word);
    if word_n.is_empty() {
        return None;
    }
    let max_edits = match word_n.chars().count() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let cand_n = normalize(candidate);
        if cand_n.is_empty() {
            continue;
        }
        let distance = edit_distance(&word_n, &cand_n);
        let score = if distance <= max_edits {
            distance
        } else if (word_n.len() >= 3 && cand_n.starts_with(&word_n))
            || (cand_n.len() >= 3 && word_n.starts_with(&cand_n))
        {
            // A prefix is a weaker hint than a near-spelling, so it ranks after any of those.
            max_edits + 1
        } else {
            continue;
        };
        if best.is_none_or(|(best_score, _)| score < best_score) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn normalize(word: &str) -> String {
    word.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// adjacent characters (the commonest typo) each cost one.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}
