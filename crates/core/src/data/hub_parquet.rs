//! The hub datasets `rajpurkar/squad` and `rajpurkar/squad_v2`: one parquet
//! file per split with columns id, title, context, question and
//! answers{text[], answer_start[]}. squad_v2 has no `is_impossible` column:
//! an empty answer list is an unanswerable question.

use super::builder::{DatasetBuilder, LoadOptions, RawAnswer};
use super::squad::{Split, SquadDataset};
use anyhow::{anyhow, bail, Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use std::path::Path;

/// The split's file in the dataset repository `repo_id`: squad_v2 keeps its
/// files under `squad_v2/`, squad under `plain_text/`.
pub fn split_file(repo_id: &str, split: Split) -> String {
    let config = if repo_id.rsplit('/').next() == Some("squad_v2") {
        "squad_v2"
    } else {
        "plain_text"
    };
    let name = match split {
        Split::Train => "train",
        Split::Validation => "validation",
    };
    format!("{config}/{name}-00000-of-00001.parquet")
}

pub fn load(path: &Path, options: &LoadOptions) -> Result<SquadDataset> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {origin}"))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| anyhow!("{origin}: not a readable parquet file: {e}"))?;
    let mut builder = DatasetBuilder::new(origin.clone(), options);
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| anyhow!("{origin}: {e}"))?;
    for (n, row) in rows.enumerate() {
        let row = row.map_err(|e| anyhow!("{origin}: row {n}: {e}"))?;
        let record = Record::from_row(&row).map_err(|e| anyhow!("{origin}: row {n}: {e}"))?;
        if !builder.push(
            &record.title,
            &record.context,
            record.id,
            record.question,
            record.answers.into(),
        )? {
            break;
        }
    }
    builder.finish()
}

struct Record {
    id: String,
    title: String,
    context: String,
    question: String,
    answers: Vec<RawAnswer>,
}

impl Record {
    fn from_row(row: &Row) -> Result<Self> {
        let mut rec = Record {
            id: String::new(),
            title: String::new(),
            context: String::new(),
            question: String::new(),
            answers: Vec::new(),
        };
        let (mut texts, mut starts) = (Vec::new(), Vec::new());
        for (name, field) in row.get_column_iter() {
            match name.as_str() {
                "id" => rec.id = string(field, name)?,
                "title" => rec.title = string(field, name)?,
                "context" => rec.context = string(field, name)?,
                "question" => rec.question = string(field, name)?,
                "answers" => {
                    let Field::Group(group) = field else {
                        bail!("column answers is not a struct")
                    };
                    for (sub, value) in group.get_column_iter() {
                        let Field::ListInternal(list) = value else {
                            bail!("answers.{sub} is not a list")
                        };
                        match sub.as_str() {
                            "text" => {
                                texts = list
                                    .elements()
                                    .iter()
                                    .map(|f| string(f, "answers.text"))
                                    .collect::<Result<_>>()?
                            }
                            "answer_start" => {
                                starts =
                                    list.elements().iter().map(integer).collect::<Result<_>>()?
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if texts.len() != starts.len() {
            bail!(
                "answers.text has {} entries but answers.answer_start {}",
                texts.len(),
                starts.len()
            );
        }
        rec.answers = texts
            .into_iter()
            .zip(starts)
            .map(|(text, answer_start)| RawAnswer { text, answer_start })
            .collect();
        Ok(rec)
    }
}

fn string(field: &Field, name: &str) -> Result<String> {
    match field {
        Field::Str(s) => Ok(s.clone()),
        other => bail!("column {name} should be a string, found {other:?}"),
    }
}

fn integer(field: &Field) -> Result<i64> {
    match field {
        Field::Int(v) => Ok(*v as i64),
        Field::Long(v) => Ok(*v),
        other => bail!("answers.answer_start should be an integer, found {other:?}"),
    }
}
