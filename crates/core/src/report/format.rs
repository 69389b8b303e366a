//! The comparison table as Markdown, CSV (RFC 4180), LaTeX (booktabs), JSON
//! and aligned plain text.

use super::table::{Row, Stat};
use anyhow::{bail, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Latex,
    Json,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "md" | "markdown" => Format::Markdown,
            "csv" => Format::Csv,
            "tex" | "latex" => Format::Latex,
            "json" => Format::Json,
            other => bail!("unknown format {other:?}: expected md, csv, tex or json"),
        })
    }
}

impl Format {
    /// The file extension an export in this format is written with.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Latex => "tex",
            Format::Json => "json",
        }
    }
}

pub fn render(rows: &[Row], format: Format) -> Result<String> {
    Ok(match format {
        Format::Markdown => markdown(rows),
        Format::Csv => csv(rows),
        Format::Latex => latex(rows),
        Format::Json => serde_json::to_string_pretty(rows)? + "\n",
    })
}

/// Seed groups carry n and a 95% Student-t interval on each mean.
const HEADERS: [&str; 13] = [
    "System",
    "Model",
    "Questions",
    "n",
    "EM",
    "F1",
    "EM 95% CI",
    "F1 95% CI",
    "ΔEM",
    "ΔF1",
    "Train time (s)",
    "Samples/s",
    "Hardware",
];

fn opt(stat: &Option<Stat>, decimals: usize) -> String {
    stat.as_ref()
        .map_or_else(|| "-".into(), |s| s.show(decimals))
}

fn delta(d: Option<f64>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{d:+.2}"))
}

fn interval(stat: &Option<Stat>) -> String {
    stat.as_ref()
        .and_then(|s| s.show_interval(2))
        .unwrap_or_else(|| "-".into())
}

/// The cells people read, in `HEADERS` order.
fn display_cells(row: &Row) -> [String; 13] {
    [
        row.label.clone(),
        // A SQuAD 2.0 row says so: its scores are not v1.1's.
        if row.squad_version == crate::data::SQUAD_V2 {
            format!("{} (SQuAD 2.0)", row.model)
        } else {
            row.model.clone()
        },
        row.eval_questions
            .map_or_else(|| "-".into(), |n| n.to_string()),
        row.runs_n().to_string(),
        opt(&row.exact_match, 2),
        opt(&row.f1, 2),
        interval(&row.exact_match),
        interval(&row.f1),
        delta(row.delta_exact_match),
        delta(row.delta_f1),
        opt(&row.train_runtime, 0),
        opt(&row.samples_per_second, 2),
        row.hardware.clone(),
    ]
}

/// Deltas are against the paper row of the same model size (or `--baseline`).
fn baseline_note(rows: &[Row]) -> String {
    let mut ids: Vec<&str> = rows.iter().filter_map(|r| r.baseline.as_deref()).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        "No row has a matching BERT paper row to measure deltas from.".into()
    } else {
        format!(
            "Δ: difference from the BERT paper row ({}).",
            ids.join(", ")
        )
    }
}

/// Space-aligned columns under a header, trailing spaces trimmed.
pub fn aligned<H, C, R>(header: &[H], rows: &[R]) -> String
where
    H: AsRef<str>,
    C: AsRef<str>,
    R: AsRef<[C]>,
{
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h.as_ref())).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(width(cell.as_ref()));
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c)))))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(AsRef::as_ref).collect());
    for row in rows {
        out += &line(row.as_ref().iter().map(AsRef::as_ref).collect());
    }
    out
}

pub fn text(rows: &[Row]) -> String {
    let cells: Vec<[String; 13]> = rows.iter().map(display_cells).collect();
    aligned(&HEADERS, &cells) + &baseline_note(rows) + "\n"
}

fn markdown(rows: &[Row]) -> String {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("| {} |\n", HEADERS.join(" | "));
    let align: Vec<&str> = (0..HEADERS.len())
        .map(|i| if (2..12).contains(&i) { "---:" } else { "---" })
        .collect();
    out += &format!("|{}|\n", align.join("|"));
    for row in rows {
        let cells: Vec<String> = display_cells(row).iter().map(|c| escape(c)).collect();
        out += &format!("| {} |\n", cells.join(" | "));
    }
    out += &format!("\n{}\n\nSources:\n", baseline_note(rows));
    for row in rows {
        out += &format!("- {}: {}\n", escape(&row.label), escape(&row.source));
    }
    out
}

/// RFC 4180: CRLF line ends; fields holding a comma, quote or line break are
/// quoted, with quotes doubled. Numbers are split into mean and std columns.
fn csv(rows: &[Row]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v}"));
    let mean = |s: &Option<Stat>| num(s.as_ref().map(|s| s.mean));
    let std = |s: &Option<Stat>| num(s.as_ref().and_then(|s| s.std));
    let ci = |s: &Option<Stat>, end: usize| num(s.as_ref().and_then(|s| s.ci95).map(|c| c[end]));
    let header = [
        "system",
        "kind",
        "model",
        "runs",
        "seeds",
        "n",
        "eval_questions",
        "em",
        "em_std",
        "f1",
        "f1_std",
        "em_ci95_low",
        "em_ci95_high",
        "f1_ci95_low",
        "f1_ci95_high",
        "delta_em",
        "delta_f1",
        "baseline",
        "train_runtime_s",
        "samples_per_second",
        "hardware",
        "source",
        "squad_version",
        "has_ans_em",
        "has_ans_f1",
        "no_ans_em",
        "no_ans_f1",
    ];
    let mut out = header.join(",") + "\r\n";
    for r in rows {
        let n = r.runs_n();
        let kind = serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let seeds: Vec<String> = r.seeds.iter().map(u64::to_string).collect();
        let fields = [
            r.label.clone(),
            kind,
            r.model.clone(),
            r.runs.join(" "),
            seeds.join(" "),
            n.to_string(),
            r.eval_questions.map_or_else(String::new, |q| q.to_string()),
            mean(&r.exact_match),
            std(&r.exact_match),
            mean(&r.f1),
            std(&r.f1),
            ci(&r.exact_match, 0),
            ci(&r.exact_match, 1),
            ci(&r.f1, 0),
            ci(&r.f1, 1),
            num(r.delta_exact_match),
            num(r.delta_f1),
            r.baseline.clone().unwrap_or_default(),
            mean(&r.train_runtime),
            mean(&r.samples_per_second),
            r.hardware.clone(),
            r.source.clone(),
            r.squad_version.clone(),
            mean(&r.has_ans_exact),
            mean(&r.has_ans_f1),
            mean(&r.no_ans_exact),
            mean(&r.no_ans_f1),
        ];
        let cells: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out += &(cells.join(",") + "\r\n");
    }
    out
}

/// A booktabs `table` that compiles on its own with `\usepackage{booktabs}`.
fn latex(rows: &[Row]) -> String {
    let mut out = String::from(
        "% Requires \\usepackage{booktabs}.\n\\begin{table}[t]\n\\centering\n\\begin{tabular}{llrrrrrrrrrrl}\n\\toprule\n",
    );
    let headers: Vec<String> = HEADERS.iter().map(|h| tex_escape(h)).collect();
    out += &format!("{} \\\\\n\\midrule\n", headers.join(" & "));
    let mut previous = None;
    for row in rows {
        // A rule between the published rows and ours.
        if previous.is_some_and(|k| k != row.kind) {
            out += "\\midrule\n";
        }
        previous = Some(row.kind);
        let cells: Vec<String> = display_cells(row).iter().map(|c| tex_escape(c)).collect();
        out += &format!("{} \\\\\n", cells.join(" & "));
    }
    out += &format!(
        "\\bottomrule\n\\end{{tabular}}\n\\caption{{SQuAD v1.1 dev. {}}}\n\\end{{table}}\n",
        tex_escape(&baseline_note(rows))
    );
    out
}

/// Escapes LaTeX's special characters; ± and Δ become math.
pub fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '±' => out.push_str("$\\pm$"),
            'Δ' => out.push_str("$\\Delta$"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_special_characters_are_escaped() {
        assert_eq!(tex_escape("a_b & 50% #1"), "a\\_b \\& 50\\% \\#1");
        assert_eq!(tex_escape("88.1 ± 0.2"), "88.1 $\\pm$ 0.2");
        assert_eq!(tex_escape("{x}\\"), "\\{x\\}\\textbackslash{}");
    }
}
