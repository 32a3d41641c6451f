//! The expense list as CSV, for spreadsheets and accounting.

use super::ExpenseQuery;
use crate::desk::Desk;
use crate::error::DeskResult;

impl Desk {
    /// The listed expenses as CSV (RFC 4180), one row per expense.
    pub async fn expenses_csv(&self, q: &ExpenseQuery) -> DeskResult<String> {
        let list = self.list_expenses(q).await?;
        let mut out = String::from(
            "date,merchant,category,status,total,tax,currency,ticket,requester,items,receipt_sha256\r\n",
        );
        for e in &list.expenses {
            let items = e
                .items
                .iter()
                .map(|i| match &i.quantity {
                    Some(q) => format!("{q} x {} {}", i.description, i.amount),
                    None => format!("{} {}", i.description, i.amount),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let cells = [
                e.spent_on.map(|d| d.to_string()).unwrap_or_default(),
                e.merchant.clone().unwrap_or_default(),
                e.category.clone(),
                e.status.to_string(),
                e.total.clone().unwrap_or_default(),
                e.tax.clone().unwrap_or_default(),
                e.currency.clone(),
                e.ticket
                    .as_ref()
                    .map(|t| format!("#{} {}", t.number, t.title))
                    .unwrap_or_default(),
                e.requester_name.clone(),
                items,
                e.image
                    .as_ref()
                    .map(|i| i.sha256.clone())
                    .unwrap_or_default(),
            ];
            let line = cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }
}

/// A CSV cell: quoted when it holds a separator, quote or line break; a leading `=`, `+`, `-`
/// or `@` is prefixed with `'` so spreadsheets don't run it as a formula.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("Cafe"), "Cafe");
        assert_eq!(csv_cell("A, B"), "\"A, B\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
    }
}
