use clap::Parser;

fn main() -> anyhow::Result<()> {
    tallydesk_ocr::cli::run(tallydesk_ocr::cli::Cli::parse())
}
