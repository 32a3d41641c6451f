//! The `tallydesk-ocr` command line: `scan` prints the fields of receipts, `eval` measures
//! accuracy and speed on a labelled folder.

mod cli;
mod eval;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    cli::run(cli::Cli::parse())
}
