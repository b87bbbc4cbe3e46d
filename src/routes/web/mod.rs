//! The HTML side: server-rendered pages over the cookie session, every form with a CSRF token,
//! no JavaScript needed for any action.

pub mod api_docs;
pub mod compare;
pub mod csrf_form;
pub mod dashboard;
pub mod devices;
pub mod error_pages;
pub mod format;
pub mod layout;
pub mod login;
pub mod page;
pub mod password;
pub mod recovery;
pub mod register;
pub mod second_factor;
pub mod sudo;

use actix_session::Session;
use actix_web::HttpResponse;
use askama::Template;

use crate::routes::web::layout::{Layout, redirect, render};
use crate::routes::web::page::{PageError, WebUser};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
}

/// The landing page, or the dashboard for a logged-in browser.
pub async fn home(user: Option<WebUser>, session: Session) -> Result<HttpResponse, PageError> {
    if user.is_some() {
        return Ok(redirect("/dashboard"));
    }
    render(&HomePage {
        layout: Layout::new(&session, None)?,
    })
}
