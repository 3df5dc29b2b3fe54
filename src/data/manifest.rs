//! Reading a CSV/TSV manifest: a header row naming the columns `path` and `label` (or
//! `mask` for segmentation), optionally `group` (e.g. a patient id) and `split`. The
//! delimiter (comma, tab or semicolon) is detected; paths are relative to the manifest's
//! folder. Bad rows become issues, never errors: only an unreadable file or a missing
//! `path` column stops the listing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::DataError;
use super::report::{Issue, IssueKind};
use super::source::{Candidate, Listing, SplitHint, relative_to, unlisted_images};

const PATH_NAMES: &[&str] = &["path", "file", "filename", "file_name", "image", "filepath"];
const LABEL_NAMES: &[&str] = &["label", "class", "target", "category"];
const GROUP_NAMES: &[&str] = &["group", "patient", "patient_id", "subject", "group_id"];
const SPLIT_NAMES: &[&str] = &["split", "subset", "set"];
const MASK_NAMES: &[&str] = &["mask", "mask_path"];

/// Detects the delimiter from the header line: tab, else semicolon when there is no comma,
/// else comma.
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    if header.contains('\t') {
        b'\t'
    } else if header.contains(';') && !header.contains(',') {
        b';'
    } else {
        b','
    }
}

/// A manifest path written as `./a/b.png` or `a\b.png` in the form the scan uses.
fn normalise(text: &str) -> PathBuf {
    let unified = text.replace('\\', "/");
    let path = Path::new(&unified);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

struct Columns {
    path: usize,
    label: Option<usize>,
    group: Option<usize>,
    split: Option<usize>,
    mask: Option<usize>,
}

fn find_columns(headers: &csv::StringRecord, file: &Path) -> Result<Columns, DataError> {
    let find = |names: &[&str]| {
        headers.iter().position(|h| {
            let h = h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase();
            names.contains(&h.as_str())
        })
    };
    let missing = |what: &str| DataError::Source {
        path: file.to_owned(),
        reason: format!(
            "the manifest has no {what} column (its header is: {})",
            headers.iter().collect::<Vec<_>>().join(", ")
        ),
    };
    let columns = Columns {
        path: find(PATH_NAMES).ok_or_else(|| missing("path"))?,
        label: find(LABEL_NAMES),
        group: find(GROUP_NAMES),
        split: find(SPLIT_NAMES),
        mask: find(MASK_NAMES),
    };
    if columns.label.is_none() && columns.mask.is_none() {
        return Err(missing("label (or mask)"));
    }
    Ok(columns)
}

/// Lists the rows of a manifest as candidates, relative to the manifest's folder.
pub fn list_manifest(file: &Path) -> Result<Listing, DataError> {
    let source_err = |reason: String| DataError::Source {
        path: file.to_owned(),
        reason,
    };
    let bytes = std::fs::read(file).map_err(|e| source_err(e.to_string()))?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(detect_delimiter(text))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| source_err(format!("could not read the header row: {e}")))?
        .clone();
    let columns = find_columns(&headers, file)?;
    let root = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let manifest_name = PathBuf::from(file.file_name().unwrap_or_default());
    let mut listing = Listing::default();
    let mut first_line: BTreeMap<PathBuf, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                listing
                    .issues
                    .push(row_issue(&manifest_name, line, format!("{e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let Some(path_text) = cell(Some(columns.path)) else {
            listing
                .issues
                .push(row_issue(&manifest_name, line, "the path is empty".into()));
            continue;
        };
        let path = relative_to(&normalise(&path_text), &root);
        if let Some(first) = first_line.get(&path) {
            let message = format!("listed again (first on line {first})");
            listing
                .issues
                .push(Issue::new(IssueKind::BadManifestRow, path, message));
            continue;
        }
        first_line.insert(path.clone(), line);
        let split = match cell(columns.split) {
            None => None,
            Some(text) => match SplitHint::parse(&text) {
                Some(split) => Some(split),
                None => {
                    let message =
                        format!("line {line}: unknown split \"{text}\" (use train, val or test)");
                    listing
                        .issues
                        .push(Issue::new(IssueKind::BadManifestRow, path, message));
                    continue;
                }
            },
        };
        let label = cell(columns.label);
        if columns.label.is_some() && label.is_none() {
            let message = format!("line {line}: the label is empty");
            listing
                .issues
                .push(Issue::new(IssueKind::ImageWithoutLabel, path, message));
            continue;
        }
        listing.candidates.push(Candidate {
            path,
            label,
            group: cell(columns.group),
            split,
            mask: cell(columns.mask).map(|m| relative_to(&normalise(&m), &root)),
            ..Candidate::default()
        });
    }
    let listed: BTreeSet<PathBuf> = first_line.into_keys().collect();
    for path in unlisted_images(&root, &listed) {
        listing.issues.push(Issue::new(
            IssueKind::ImageWithoutLabel,
            path,
            "an image next to listed ones that the manifest does not list".to_owned(),
        ));
    }
    Ok(listing)
}

fn row_issue(manifest: &Path, line: u64, reason: String) -> Issue {
    Issue::new(
        IssueKind::BadManifestRow,
        manifest.to_path_buf(),
        format!("line {line}: {reason}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_and_paths_are_normalised() {
        assert_eq!(detect_delimiter("path\tlabel\na\tb"), b'\t');
        assert_eq!(detect_delimiter("path;label"), b';');
        assert_eq!(detect_delimiter("path,label;x"), b',');
        assert_eq!(normalise("./a\\b c.png"), PathBuf::from("a/b c.png"));
    }

    #[test]
    fn bad_rows_become_issues_and_a_missing_path_column_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.tsv");
        std::fs::write(
            &file,
            "\u{feff}Path\tLabel\tSplit\n./x.png\tcat\ttrain\nx.png\tdog\ttest\ny.png\t\ttrain\nz.png\tcat\tholdout\n\n",
        )
        .unwrap();
        let listing = list_manifest(&file).unwrap();
        assert_eq!(listing.candidates.len(), 1);
        assert_eq!(listing.candidates[0].path, PathBuf::from("x.png"));
        assert_eq!(listing.candidates[0].split, Some(SplitHint::Train));
        let kinds: Vec<_> = listing
            .issues
            .iter()
            .map(|i| (i.kind, i.path.clone()))
            .collect();
        assert!(
            kinds.contains(&(IssueKind::BadManifestRow, "x.png".into())),
            "{kinds:?}"
        );
        assert!(kinds.contains(&(IssueKind::ImageWithoutLabel, "y.png".into())));
        assert!(kinds.contains(&(IssueKind::BadManifestRow, "z.png".into())));

        std::fs::write(&file, "name,label\na.png,cat\n").unwrap();
        let err = list_manifest(&file).unwrap_err();
        assert!(err.to_string().contains("no path column"), "{err}");
        assert!(err.to_string().ends_with("m.tsv"), "{err}");
    }
}
