//! How the client prints answers: a table on a terminal, JSON or CSV when
//! asked (and JSON when standard output is not a terminal).

use std::io::{IsTerminal, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;
use serde_json::Value;

/// `--json` / `--csv`.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct OutputArgs {
    /// Print JSON (one record per line when following history).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV with a header row.
    #[arg(long)]
    pub csv: bool,
}

/// The chosen output form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table, for people.
    Table,
    /// JSON, for programs.
    Json,
    /// CSV, for spreadsheets.
    Csv,
}

impl OutputArgs {
    /// The flags' choice, else a table on a terminal and JSON otherwise.
    pub fn format(self) -> Format {
        match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ if std::io::stdout().is_terminal() => Format::Table,
            _ => Format::Json,
        }
    }
}

/// A cell's text: strings as they are, null as empty, the rest as JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes one line to standard output; a closed pipe (`| head`) comes back
/// as an error for `main` to end on quietly, not as a panic.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)
    };
}

/// Prints `rows` (objects) with `columns` for the table and CSV forms;
/// JSON prints the rows whole, as one array.
pub fn print_rows(format: Format, columns: &[&str], rows: &[Value]) -> anyhow::Result<()> {
    match format {
        Format::Json => out!("{}", serde_json::to_string_pretty(rows)?)?,
        Format::Csv => print_csv(columns, rows, true)?,
        Format::Table => print_table(columns, rows)?,
    }
    Ok(())
}

/// Prints one batch of followed rows: JSON as one object per line, CSV
/// with the header only on the first batch.
pub fn print_stream(
    format: Format,
    columns: &[&str],
    rows: &[Value],
    first: bool,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for row in rows {
                out!("{}", serde_json::to_string(row)?)?;
            }
        }
        Format::Csv => print_csv(columns, rows, first)?,
        Format::Table => print_table(columns, rows)?,
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// Prints one object: JSON whole, or its fields as name and value rows.
pub fn print_object(format: Format, object: &Value) -> anyhow::Result<()> {
    let Value::Object(fields) = object else {
        out!("{object}")?;
        return Ok(());
    };
    match format {
        Format::Json => out!("{}", serde_json::to_string_pretty(object)?)?,
        Format::Csv => {
            let columns: Vec<&str> = fields.keys().map(String::as_str).collect();
            print_csv(&columns, std::slice::from_ref(object), true)?;
        }
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            for (name, value) in fields {
                table.add_row([name.clone(), cell(Some(value))]);
            }
            out!("{table}")?;
        }
    }
    Ok(())
}

fn print_table(columns: &[&str], rows: &[Value]) -> std::io::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(columns);
    for row in rows {
        table.add_row(columns.iter().map(|column| cell(row.get(column))));
    }
    out!("{table}")
}

fn print_csv(columns: &[&str], rows: &[Value], header: bool) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
    if header {
        writer.write_record(columns)?;
    }
    for row in rows {
        writer.write_record(columns.iter().map(|column| cell(row.get(column))))?;
    }
    writer.flush()?;
    Ok(())
}
