//! `/api-docs/`: the OpenAPI document served at `/openapi.json`, read as a page. It is rendered
//! on the server from the same document, in the site's own layout: no script, nothing loaded
//! from elsewhere, and it reads at a phone's width as well as a desktop's.

use std::sync::OnceLock;

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde_json::Value;

use crate::account::Accounts;
use crate::routes::api::openapi::document;
use crate::routes::web::error_pages::logged_in_email;
use crate::routes::web::layout::{Layout, render};
use crate::routes::web::page::{PageError, WebUser};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocsPage {
    layout: Layout,
    reference: &'static Reference,
}

/// What the page shows of the document, read from it once.
struct Reference {
    title: String,
    version: String,
    description: Prose,
    groups: Vec<Group>,
    schemas: Vec<NamedSchema>,
}

/// The operations of one tag, in the document's order.
struct Group {
    tag: String,
    description: Prose,
    operations: Vec<Operation>,
}

struct Operation {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    description: Prose,
    security: String,
    parameters: Vec<Parameter>,
    request: Option<Body>,
    responses: Vec<Reply>,
}

struct Parameter {
    name: String,
    location: String,
    required: bool,
    description: Prose,
}

struct Body {
    media_types: String,
    description: Prose,
    schema: Option<SchemaLink>,
}

struct Reply {
    status: String,
    description: Prose,
    schema: Option<SchemaLink>,
}

/// A named schema links to its entry below; another is shown as it is written.
enum SchemaLink {
    Named(String),
    Inline(String),
}

/// A description as the document writes it: plain text, with `code` between backticks.
#[derive(Default)]
struct Prose(Vec<Span>);

struct Span {
    code: bool,
    text: String,
}

impl Prose {
    fn read(text: &str) -> Self {
        Self(
            text.split('`')
                .enumerate()
                .filter(|(_, text)| !text.is_empty())
                .map(|(index, text)| Span {
                    code: index % 2 == 1,
                    text: text.to_owned(),
                })
                .collect(),
        )
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct NamedSchema {
    name: String,
    json: String,
}

pub async fn show(
    accounts: web::Data<Accounts>,
    session: Session,
    user: Option<WebUser>,
) -> Result<HttpResponse, PageError> {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    let reference = REFERENCE
        .get_or_init(|| Reference::read(&serde_json::from_str(document()).expect("the OpenAPI document is JSON")));
    render(&ApiDocsPage {
        layout: Layout::new(&session, logged_in_email(&accounts.db, user.as_ref()).await)?,
        reference,
    })
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn prose(value: &Value, key: &str) -> Prose {
    Prose::read(value.get(key).and_then(Value::as_str).unwrap_or_default())
}

impl Reference {
    fn read(document: &Value) -> Self {
        let mut groups: Vec<Group> = document["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tag| Group {
                tag: text(tag, "name"),
                description: prose(tag, "description"),
                operations: Vec::new(),
            })
            .collect();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let Some(operation) = item.get(method) else { continue };
                let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
                let operation = Operation::read(method, path, operation);
                match groups.iter_mut().find(|group| group.tag == tag) {
                    Some(group) => group.operations.push(operation),
                    None => groups.push(Group {
                        tag,
                        description: Prose::default(),
                        operations: vec![operation],
                    }),
                }
            }
        }
        groups.retain(|group| !group.operations.is_empty());
        let schemas = document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| NamedSchema {
                name: name.clone(),
                json: serde_json::to_string_pretty(schema).unwrap_or_default(),
            })
            .collect();
        Self {
            title: text(&document["info"], "title"),
            version: text(&document["info"], "version"),
            description: prose(&document["info"], "description"),
            groups,
            schemas,
        }
    }
}

impl Operation {
    fn read(method: &str, path: &str, operation: &Value) -> Self {
        let parameters = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| Parameter {
                name: text(parameter, "name"),
                location: text(parameter, "in"),
                required: parameter["required"].as_bool().unwrap_or(false),
                description: prose(parameter, "description"),
            })
            .collect();
        let request = operation.get("requestBody").map(|body| Body {
            media_types: body["content"]
                .as_object()
                .map(|content| content.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            description: prose(body, "description"),
            schema: first_schema(&body["content"]),
        });
        let responses = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(status, reply)| Reply {
                status: status.clone(),
                description: prose(reply, "description"),
                schema: first_schema(&reply["content"]),
            })
            .collect();
        Self {
            anchor: operation["operationId"]
                .as_str()
                .map_or_else(|| format!("{method}-{path}"), str::to_owned),
            method: method.to_uppercase(),
            path: path.to_owned(),
            summary: text(operation, "summary"),
            description: prose(operation, "description"),
            security: security(operation),
            parameters,
            request,
            responses,
        }
    }
}

/// Who may call: the security schemes named, "none" for an operation open to anyone (an empty
/// requirement among them), or nothing said.
fn security(operation: &Value) -> String {
    let Some(requirements) = operation["security"].as_array() else {
        return String::new();
    };
    let names: Vec<String> = requirements
        .iter()
        .map(|requirement| match requirement.as_object() {
            Some(schemes) if !schemes.is_empty() => schemes.keys().cloned().collect::<Vec<_>>().join(" + "),
            _ => "none".to_owned(),
        })
        .collect();
    names.join(" or ")
}

fn first_schema(content: &Value) -> Option<SchemaLink> {
    let schema = content.as_object()?.values().find_map(|media| media.get("schema"))?;
    Some(
        match schema["$ref"]
            .as_str()
            .and_then(|reference| reference.rsplit('/').next())
        {
            Some(name) => SchemaLink::Named(name.to_owned()),
            None => SchemaLink::Inline(serde_json::to_string(schema).unwrap_or_default()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_document_is_on_the_page_once() {
        let document: Value = serde_json::from_str(document()).unwrap();
        let reference = Reference::read(&document);
        let on_page: Vec<(String, String)> = reference
            .groups
            .iter()
            .flat_map(|group| group.operations.iter())
            .map(|operation| (operation.method.clone(), operation.path.clone()))
            .collect();
        let mut in_document = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method).is_some() {
                    in_document.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        assert_eq!(on_page.len(), in_document.len());
        for operation in &in_document {
            assert!(on_page.contains(operation), "{operation:?} is missing");
        }
        let anchors: std::collections::HashSet<&str> = reference
            .groups
            .iter()
            .flat_map(|group| group.operations.iter())
            .map(|operation| operation.anchor.as_str())
            .collect();
        assert_eq!(anchors.len(), in_document.len(), "every operation has its own anchor");
        assert!(reference.schemas.iter().any(|schema| schema.name == "ErrorResponse"));
    }

    #[test]
    fn backticks_mark_code_in_a_description() {
        let prose = Prose::read("every error has the `ErrorResponse` shape; `reason`");
        let spans: Vec<(bool, &str)> = prose.0.iter().map(|span| (span.code, span.text.as_str())).collect();
        assert_eq!(
            spans,
            [
                (false, "every error has the "),
                (true, "ErrorResponse"),
                (false, " shape; "),
                (true, "reason")
            ]
        );
        assert!(Prose::read("").is_empty());
    }

    #[test]
    fn security_names_the_schemes_and_says_none_for_an_open_operation() {
        let either = serde_json::json!({ "security": [{ "bearer": [] }, { "cookie": [] }] });
        assert_eq!(security(&either), "bearer or cookie");
        let open = serde_json::json!({ "security": [{}] });
        assert_eq!(security(&open), "none");
        assert_eq!(security(&serde_json::json!({})), "");
    }
}
