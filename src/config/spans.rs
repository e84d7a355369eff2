//! Where each key of a TOML document is written: dotted key paths ↔ lines, from the parser's own
//! spans (`toml::de::DeTable`), so that every error names the key and the line in the user's file
//! (tables, inline tables and dotted keys alike).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One key of the document: its path, the span of the key and the span of its value.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    path: Vec<String>,
    key: Range<usize>,
    value: Range<usize>,
}

/// The keys of a document with their positions.
#[derive(Debug, Clone, Default)]
pub struct KeyLines {
    text_lines: Vec<usize>,
    entries: Vec<Entry>,
}

impl KeyLines {
    /// Indexes `text`; an unparsable document gives an empty index.
    pub fn new(text: &str) -> Self {
        let text_lines = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut entries = Vec::new();
        if let Ok(doc) = DeTable::parse(text) {
            collect(doc.get_ref(), &mut Vec::new(), &mut entries);
        }
        KeyLines {
            text_lines,
            entries,
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_of_offset(&self, offset: usize) -> usize {
        self.text_lines.partition_point(|&start| start <= offset)
    }

    /// 1-based line where the key `path` (segments, e.g. `["model", "width"]`) is written.
    pub fn line_of(&self, path: &[&str]) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.path.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|e| self.line_of_offset(e.key.start))
    }

    /// 1-based line of a dotted key path `table.key` (the segments are split at the first dot,
    /// so `sweep.vary.model.width` is not meant here; use [`KeyLines::line_of`]).
    pub fn line_of_dotted(&self, dotted: &str) -> Option<usize> {
        let segs: Vec<&str> = dotted.split('.').collect();
        self.line_of(&segs)
    }

    /// The deepest key whose key or value span contains `offset`, as a dotted path.
    pub fn path_at(&self, offset: usize) -> Option<String> {
        self.entries
            .iter()
            .filter(|e| e.key.contains(&offset) || e.value.contains(&offset))
            .max_by_key(|e| e.path.len())
            .map(|e| e.path.join("."))
    }
}

fn collect(table: &DeTable<'_>, prefix: &mut Vec<String>, out: &mut Vec<Entry>) {
    for (k, v) in table.iter() {
        prefix.push(k.get_ref().to_string());
        out.push(Entry {
            path: prefix.clone(),
            key: k.span(),
            value: v.span(),
        });
        if let DeValue::Table(t) = v.get_ref() {
            collect(t, prefix, out);
        }
        prefix.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_tables_inline_tables_and_quoted_keys_have_their_lines() {
        let text = "[experiment]\nname = \"a\"\n\n[model]\nwidth = 3\nactivation = { name = \"relu\", alpha = 1 }\n[sweep.vary]\n\"model.width\" = [1, 2]\n";
        let k = KeyLines::new(text);
        assert_eq!(k.line_of(&["experiment", "name"]), Some(2));
        assert_eq!(k.line_of_dotted("model.width"), Some(5));
        assert_eq!(k.line_of(&["model", "activation", "alpha"]), Some(6));
        assert_eq!(k.line_of(&["sweep", "vary", "model.width"]), Some(8));
        assert_eq!(k.line_of_dotted("model.depth"), None);
        let off = text.find("3\n").unwrap();
        assert_eq!(k.path_at(off).as_deref(), Some("model.width"));
        assert_eq!(k.line_of_offset(0), 1);
        assert_eq!(KeyLines::new("[a").line_of_dotted("a.b"), None);
    }
}
