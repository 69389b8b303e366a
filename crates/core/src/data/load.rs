//! Loading SQuAD: an official-format JSON file, or the hub dataset's parquet
//! files (data/hub_parquet.rs), through the checks of data/builder.rs.

use super::builder::{context_too_long, DatasetBuilder, LoadOptions, RawAnswer, RawAnswers};
use super::hub_parquet;
use super::long_strings::{find_long_string, find_long_string_in, LongString};
use super::squad::{Split, SquadDataset};
use crate::config::{DataLocation, DataSource};
use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    version: Option<String>,
    data: Vec<RawArticle>,
}

#[derive(Deserialize)]
struct RawArticle {
    #[serde(default)]
    title: String,
    paragraphs: Vec<RawParagraph>,
}

#[derive(Deserialize)]
struct RawParagraph {
    context: String,
    qas: Vec<RawQa>,
}

#[derive(Deserialize)]
struct RawQa {
    id: String,
    question: String,
    answers: Vec<RawAnswer>,
    #[serde(default)]
    is_impossible: Option<bool>,
    #[serde(default)]
    plausible_answers: Vec<RawAnswer>,
}

/// Reads an official-format SQuAD JSON file (`{"data": [{"title", "paragraphs": …}]}`).
/// An over-long string is found by streaming first, so a huge context fails
/// in constant memory instead of being read whole.
pub fn load_json(path: &Path, options: &LoadOptions) -> Result<SquadDataset> {
    let origin = path.display().to_string();
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read SQuAD file {origin}"))?;
    let long = find_long_string(file, options.max_context_chars)
        .with_context(|| format!("cannot read SQuAD file {origin}"))?;
    if let Some(at) = long {
        return Err(too_long(&origin, &at, options.max_context_chars));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read SQuAD file {origin}"))?;
    parse_scanned(&bytes, &origin, options)
}

/// Parses SQuAD JSON already in memory; `origin` names it in messages.
pub fn parse_json(bytes: &[u8], origin: &str, options: &LoadOptions) -> Result<SquadDataset> {
    if let Some(at) = find_long_string_in(bytes, options.max_context_chars) {
        return Err(too_long(origin, &at, options.max_context_chars));
    }
    parse_scanned(bytes, origin, options)
}

fn too_long(origin: &str, at: &LongString, max: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "{origin}:{}:{}: {}",
        at.line,
        at.column,
        context_too_long(format!("more than {max}"), max)
    )
}

/// Parses bytes already checked for over-long strings.
fn parse_scanned(bytes: &[u8], origin: &str, options: &LoadOptions) -> Result<SquadDataset> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        bail!("{origin}: the file is empty; expected SQuAD JSON ({{\"data\": [...]}})");
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{origin}: not UTF-8: invalid byte at offset {}",
            e.valid_up_to()
        )
    })?;
    let raw: RawFile = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{origin}:{}:{}: malformed SQuAD JSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    let mut builder = DatasetBuilder::new(origin.to_string(), options);
    builder.set_version(raw.version);
    let n_articles = raw.data.len();
    let articles = options.articles.clone().unwrap_or(0..n_articles);
    if articles.start >= articles.end || articles.end > n_articles {
        bail!(
            "{origin}: articles {}..{} are not within its {n_articles} articles",
            articles.start,
            articles.end
        );
    }
    'articles: for article in raw
        .data
        .into_iter()
        .skip(articles.start)
        .take(articles.len())
    {
        for paragraph in article.paragraphs {
            for qa in paragraph.qas {
                if !builder.push(
                    &article.title,
                    &paragraph.context,
                    qa.id,
                    qa.question,
                    RawAnswers {
                        answers: qa.answers,
                        is_impossible: qa.is_impossible,
                        plausible_answers: qa.plausible_answers,
                    },
                )? {
                    break 'articles;
                }
            }
        }
    }
    builder.finish()
}

/// Loads a split from any source: a local JSON file or the hub dataset's parquet files.
pub fn load_source(
    source: &DataSource,
    split: Split,
    options: &LoadOptions,
) -> Result<SquadDataset> {
    match source.location() {
        DataLocation::File(path) => load_json(&path, options),
        DataLocation::Hub(repo) => {
            if let Some(r) = &options.articles {
                bail!(
                    "{}: articles {}..{} pick articles of a JSON file; the hub's parquet has none",
                    source.as_str(),
                    r.start,
                    r.end
                );
            }
            let path = repo.fetch(&hub_parquet::split_file(&repo.id, split))?;
            hub_parquet::load(&path, options)
        }
    }
}
