//! Character n-gram baselines for text runs: interpolated Witten–Bell smoothing (Witten & Bell
//! 1991; the form of Chen & Goodman 1999, §2.5), counted on exactly the training samples the
//! network sees (each sample's target after its last n − 1 context characters) and evaluated on
//! the run's test samples.
//!
//! With history h (the previous n − 1 characters) and its shortening h′ (drop the oldest):
//! `P(c | h) = (C(h c) + T(h)·P(c | h′)) / (C(h) + T(h))`, where `C(h c)` counts h followed by
//! c, `C(h)` counts h followed by anything, and `T(h)` is the number of distinct characters
//! seen after h; a history never seen falls back to `P(c | h′)`. The recursion ends in the
//! uniform distribution over the vocabulary: `P(c | ε) = (C(c) + T·1/V) / (N + T)`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts of what follows each history, for history lengths 0 … order − 1.
#[derive(Debug, Clone)]
pub struct NgramModel {
    order: usize,
    vocabulary: Vec<char>,
    /// `counts[len][history] = (next char → count)`.
    counts: Vec<BTreeMap<Vec<char>, BTreeMap<char, u64>>>,
}

impl NgramModel {
    /// Counts every n-gram (n ≤ `order`) of `text`.
    pub fn train(text: &[char], order: usize, vocabulary: &[char]) -> Self {
        let samples: Vec<(&[char], char)> = (0..text.len())
            .map(|i| (&text[i.saturating_sub(order.max(1) - 1)..i], text[i]))
            .collect();
        Self::train_samples(&samples, order, vocabulary)
    }

    /// Counts, for every `(history, target)` sample, the target after each suffix of its history
    /// of length 0 … `order − 1` (as far as the history reaches): the n-grams of exactly those
    /// samples.
    pub fn train_samples<H: AsRef<[char]>>(
        samples: &[(H, char)],
        order: usize,
        vocabulary: &[char],
    ) -> Self {
        let order = order.max(1);
        let mut counts = vec![BTreeMap::new(); order];
        for (history, target) in samples {
            let history = history.as_ref();
            for (len, table) in counts.iter_mut().enumerate() {
                if history.len() < len {
                    break;
                }
                let h = history[history.len() - len..].to_vec();
                *table
                    .entry(h)
                    .or_insert_with(BTreeMap::new)
                    .entry(*target)
                    .or_insert(0) += 1;
            }
        }
        NgramModel {
            order,
            vocabulary: vocabulary.to_vec(),
            counts,
        }
    }

    /// `P(c | history)` with the last `order − 1` characters of `history` (fewer when shorter).
    pub fn prob(&self, history: &[char], c: char) -> f64 {
        let len = history.len().min(self.order - 1);
        self.prob_len(&history[history.len() - len..], c)
    }

    fn prob_len(&self, h: &[char], c: char) -> f64 {
        let lower = if h.is_empty() {
            1.0 / self.vocabulary.len().max(1) as f64
        } else {
            self.prob_len(&h[1..], c)
        };
        match self.counts[h.len()].get(h) {
            None => lower,
            Some(next) => {
                let total: u64 = next.values().sum();
                let types = next.len() as f64;
                let count = next.get(&c).copied().unwrap_or(0) as f64;
                (count + types * lower) / (total as f64 + types)
            }
        }
    }

    /// The most probable next character (the first in vocabulary order on ties).
    pub fn predict(&self, history: &[char]) -> char {
        let len = history.len().min(self.order - 1);
        self.predict_len(&history[history.len() - len..])
    }
}

/// One n-gram baseline on the test samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct NgramBaseline {
    /// n (1 = unigram).
    pub order: usize,
    /// Mean −log₂ P(target | history) over the test samples.
    pub bits_per_char: f64,
    /// Fraction of test samples whose most probable next character is the target.
    pub accuracy: f64,
}

/// Unigram … `max_order`-gram baselines counted on the `(history, target)` training samples
/// and evaluated on the `(history, target)` test samples, with every sample's
/// `−log₂ P(target | history)` per order (the raw material of paired comparisons; the
/// baseline's bits per character is their mean).
pub fn evaluate(
    train: &[(Vec<char>, char)],
    eval: &[(Vec<char>, char)],
    vocabulary: &[char],
    max_order: usize,
) -> (Vec<NgramBaseline>, Vec<Vec<f64>>) {
    let model = NgramModel::train_samples(train, max_order, vocabulary);
    let n = eval.len().max(1) as f64;
    (1..=max_order)
        .map(|order| {
            let bits = model.bits_per_sample(eval, order);
            let hits = eval
                .iter()
                .filter(|(h, target)| {
                    let keep = h.len().min(order - 1);
                    model.predict_len(&h[h.len() - keep..]) == *target
                })
                .count();
            let baseline = NgramBaseline {
                order,
                bits_per_char: bits.iter().sum::<f64>() / n,
                accuracy: hits as f64 / n,
            };
            (baseline, bits)
        })
        .unzip()
}

impl NgramModel {
    /// `−log₂ P(target | last order − 1 characters of history)` per sample.
    fn bits_per_sample(&self, eval: &[(Vec<char>, char)], order: usize) -> Vec<f64> {
        eval.iter()
            .map(|(h, target)| {
                let keep = h.len().min(order.max(1) - 1);
                -self.prob_len(&h[h.len() - keep..], *target).log2()
            })
            .collect()
    }

    fn predict_len(&self, h: &[char]) -> char {
        let mut best = (f64::NEG_INFINITY, ' ');
        for &c in &self.vocabulary {
            let p = self.prob_len(h, c);
            if p > best.0 {
                best = (p, c);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witten_bell_matches_hand_computed_values() {
        // Text "abab", vocabulary {a, b, c}: N = 4, unigram counts a:2 b:2, T = 2.
        let text: Vec<char> = "abab".chars().collect();
        let vocab = ['a', 'b', 'c'];
        let m = NgramModel::train(&text, 2, &vocab);
        // P(a) = (2 + 2·1/3)/(4 + 2) = 4/9; P(c) = (0 + 2/3)/6 = 1/9.
        assert!((m.prob(&[], 'a') - 4.0 / 9.0).abs() < 1e-15);
        assert!((m.prob(&[], 'c') - 1.0 / 9.0).abs() < 1e-15);
        // After 'a': b follows twice (C = 2, T = 1): P(b|a) = (2 + 4/9)/3 = 22/27,
        // P(a|a) = (0 + 4/9)/3 = 4/27.
        assert!((m.prob(&['a'], 'b') - 22.0 / 27.0).abs() < 1e-15);
        assert!((m.prob(&['a'], 'a') - 4.0 / 27.0).abs() < 1e-15);
        // After 'b': a follows once: P(a|b) = (1 + 4/9)/2 = 13/18. Unseen history 'c' backs off.
        assert!((m.prob(&['b'], 'a') - 13.0 / 18.0).abs() < 1e-15);
        assert!((m.prob(&['c'], 'a') - 4.0 / 9.0).abs() < 1e-15);
        // Probabilities sum to one.
        for h in [&[][..], &['a'][..], &['b'][..], &['c'][..]] {
            let s: f64 = vocab.iter().map(|&c| m.prob(h, c)).sum();
            assert!((s - 1.0).abs() < 1e-14, "{h:?}: {s}");
        }
        // Evaluated on "ab" → targets: unigram bits = −log2(4/9), bigram uses P(b|a).
        let eval = vec![(vec!['a'], 'b')];
        let samples: Vec<(Vec<char>, char)> = (0..text.len())
            .map(|i| (text[i.saturating_sub(1)..i].to_vec(), text[i]))
            .collect();
        let (b, _) = evaluate(&samples, &eval, &vocab, 2);
        assert!((b[0].bits_per_char + (4.0f64 / 9.0).log2()).abs() < 1e-14);
        assert!((b[1].bits_per_char + (22.0f64 / 27.0).log2()).abs() < 1e-14);
        // Unigram argmax: a and b tie at 4/9, the first in vocabulary order wins (a ≠ b).
        assert_eq!((b[0].accuracy, b[1].accuracy), (0.0, 1.0));
    }

    #[test]
    fn counting_samples_counts_only_their_ngrams() {
        // Two training samples of "xabcab": history "ab" → 'c' and history "ca" → 'b'. Bigram
        // counts: a→? none (only suffixes of the histories before their own targets): after 'b'
        // comes 'c' once, after 'a' comes 'b' once; unigram counts c:1, b:1 (N = 2, T = 2).
        let vocab = ['a', 'b', 'c', 'x'];
        let samples = vec![(vec!['a', 'b'], 'c'), (vec!['c', 'a'], 'b')];
        let m = NgramModel::train_samples(&samples, 3, &vocab);
        // P(c) = (1 + 2/4)/(2 + 2) = 3/8; P(a) = (0 + 2/4)/4 = 1/8.
        assert!((m.prob(&[], 'c') - 3.0 / 8.0).abs() < 1e-15);
        assert!((m.prob(&[], 'a') - 1.0 / 8.0).abs() < 1e-15);
        // P(c | b) = (1 + 1·3/8)/(1 + 1) = 11/16 (the text's "x" never counted).
        assert!((m.prob(&['b'], 'c') - 11.0 / 16.0).abs() < 1e-15);
        assert!((m.prob(&['x'], 'a') - 1.0 / 8.0).abs() < 1e-15);
        // A whole text counted as samples equals counting the text.
        let text: Vec<char> = "abcabcaab".chars().collect();
        let whole = NgramModel::train(&text, 3, &vocab);
        let as_samples: Vec<(Vec<char>, char)> = (0..text.len())
            .map(|i| (text[i.saturating_sub(2)..i].to_vec(), text[i]))
            .collect();
        let m = NgramModel::train_samples(&as_samples, 3, &vocab);
        for h in [&[][..], &['a'][..], &['c', 'a'][..]] {
            for &c in &vocab {
                assert_eq!(m.prob(h, c), whole.prob(h, c));
            }
        }
    }
}
