//! The page, from its template (`templates/page.html`): one self-contained file,
//! styles and script inline, every text from the feature files and the reports escaped.

use askama::Template;

use super::{
    history,
    model::{self, Book, Outcome},
};

#[derive(Debug, Template)]
#[template(path = "page.html", config = "tests/bdd/living_doc/askama.toml")]
pub struct Page<'a> {
    pub book: &'a Book,
    /// When the page was rendered, as `YYYY-MM-DD HH:MM UTC`.
    pub generated: String,
    pub commit: &'a str,
}

impl<'a> Page<'a> {
    pub fn new(book: &'a Book, generated: String, commit: &'a str) -> Self {
        Self {
            book,
            generated,
            commit,
        }
    }
}
