//! `GET /docs`: the API reference as one HTML page rendered on the server from the OpenAPI
//! document, with its stylesheet at `/docs/docs.css`. Nothing is fetched from elsewhere and
//! no script runs, so the Content-Security-Policy allows only this origin's stylesheet.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::openapi::document;
use crate::escape::html;

const CSS: &str = include_str!("docs.css");

const CSP: &str = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `GET /docs`.
#[utoipa::path(get, path = "/docs", tag = "reference",
    responses(
        (status = 200, description = "The API reference.", content_type = "text/html", body = String),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = super::views::ErrorBody),
    ))]
pub async fn page() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| render(document()));
    with_headers(page.as_str(), "text/html; charset=utf-8")
}

/// `GET /docs/docs.css`.
pub async fn stylesheet() -> Response {
    with_headers(CSS, "text/css; charset=utf-8")
}

fn with_headers(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The whole page. Every string from the document passes through `html`.
fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let title = text(&info["title"]);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} API reference</title><link rel=\"stylesheet\" href=\"/docs/docs.css\">\
         </head><body><header><h1>{} API {}</h1><p>{}</p><p>OpenAPI {}: \
         <a href=\"/openapi.json\">/openapi.json</a></p></header><nav><h2>Operations</h2><ul>",
        html(title),
        html(title),
        html(text(&info["version"])),
        html(text(&info["description"])),
        html(text(&doc["openapi"])),
    );
    let operations = operations(doc);
    for (method, path, _) in &operations {
        let _ = write!(
            out,
            "<li><a href=\"#{}\"><code>{} {}</code></a></li>",
            anchor(method, path),
            method.to_uppercase(),
            html(path)
        );
    }
    out.push_str("</ul></nav><main>");
    security(doc, &mut out);
    out.push_str("<section><h2>Operations</h2>");
    for (method, path, op) in &operations {
        operation(method, path, op, &mut out);
    }
    out.push_str("</section><section><h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            component(name, schema, &mut out);
        }
    }
    out.push_str("</section></main></body></html>\n");
    out
}

fn operations(doc: &Value) -> Vec<(&'static str, &str, &Value)> {
    let mut ops = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    ops.push((method, path.as_str(), op));
                }
            }
        }
    }
    ops
}

fn security(doc: &Value, out: &mut String) {
    out.push_str("<section><h2>Authentication</h2><dl>");
    if let Some(schemes) = doc["components"]["securitySchemes"].as_object() {
        for (name, scheme) in schemes {
            let kind = match text(&scheme["type"]) {
                "http" => format!("HTTP {}", text(&scheme["scheme"])),
                "apiKey" => format!("header {}", text(&scheme["name"])),
                other => other.to_owned(),
            };
            let _ = write!(
                out,
                "<dt><code>{}</code> ({})</dt><dd>{}</dd>",
                html(name),
                html(&kind),
                html(text(&scheme["description"]))
            );
        }
    }
    out.push_str("</dl></section>");
}

fn operation(method: &str, path: &str, op: &Value, out: &mut String) {
    let _ = write!(
        out,
        "<article id=\"{}\"><h3><code>{} {}</code></h3>",
        anchor(method, path),
        method.to_uppercase(),
        html(path)
    );
    for key in ["summary", "description"] {
        if let Some(s) = op[key].as_str() {
            let _ = write!(out, "<p>{}</p>", html(s));
        }
    }
    let auth: Vec<String> = op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_object())
        .flat_map(|s| s.keys().map(|k| html(k)))
        .collect();
    let auth = if auth.is_empty() {
        "none".to_owned()
    } else {
        auth.join(" or ")
    };
    let _ = write!(out, "<p class=\"auth\">Authentication: {auth}</p>");
    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "<table><caption>Parameters</caption><tr><th>Name</th><th>In</th><th>Type</th>\
             <th>Description</th></tr>",
        );
        for p in params {
            let required = if p["required"] == true {
                " (required)"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(text(&p["name"])),
                html(text(&p["in"])),
                type_of(&p["schema"]),
                html(text(&p["description"]))
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        let _ = write!(
            out,
            "<p>Request body{}: {}</p>",
            if body["required"] == true {
                " (required)"
            } else {
                ""
            },
            contents(&body["content"])
        );
        if let Some(d) = body["description"].as_str() {
            let _ = write!(out, "<p>{}</p>", html(d));
        }
    }
    out.push_str(
        "<table><caption>Responses</caption><tr><th>Status</th><th>Description</th>\
         <th>Body</th></tr>",
    );
    if let Some(responses) = op["responses"].as_object() {
        for (status, response) in responses {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(status),
                html(text(&response["description"])),
                contents(&response["content"])
            );
        }
    }
    out.push_str("</table></article>");
}

fn contents(content: &Value) -> String {
    content
        .as_object()
        .map(|c| {
            c.iter()
                .map(|(media, v)| format!("<code>{}</code> {}", html(media), type_of(&v["schema"])))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

fn component(name: &str, schema: &Value, out: &mut String) {
    let _ = write!(
        out,
        "<article id=\"schema-{}\"><h3>{}</h3>",
        html(name),
        html(name)
    );
    if let Some(d) = schema["description"].as_str() {
        let _ = write!(out, "<p>{}</p>", html(d));
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut properties: Vec<(&String, &Value)> = Vec::new();
    // A flattened struct is an `allOf` of a reference and its own properties.
    for part in std::iter::once(schema).chain(schema["allOf"].as_array().into_iter().flatten()) {
        if let Some(props) = part["properties"].as_object() {
            properties.extend(props.iter());
        }
        if let Some(r) = part["$ref"].as_str() {
            let _ = write!(out, "<p>All the fields of {}, and:</p>", reference(r));
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", html(text(v))))
            .collect();
        let _ = write!(out, "<p>One of: {}</p>", values.join(", "));
    }
    if !properties.is_empty() {
        out.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
        for (field, prop) in properties {
            let required = if required.contains(&field.as_str()) {
                " (required)"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td></tr>",
                html(field),
                type_of(prop),
                html(text(&prop["description"]))
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</article>");
}

/// A schema's type in a few words, references as links.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return reference(r);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema[key].as_array() {
            let parts: Vec<String> = parts.iter().map(type_of).collect();
            return parts.join(" | ");
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec!["any"],
    };
    types
        .iter()
        .map(|t| match *t {
            "array" => format!("array of {}", type_of(&schema["items"])),
            t => match schema["format"].as_str() {
                Some(format) => format!("{} ({})", html(t), html(format)),
                None => html(t),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn reference(r: &str) -> String {
    let name = r.rsplit('/').next().unwrap_or(r);
    format!("<a href=\"#schema-{}\">{}</a>", html(name), html(name))
}

fn anchor(method: &str, path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("op-{method}{slug}")
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_every_operation_and_schema_and_escapes_the_documents_text() {
        let page = render(document());
        for (method, path, _) in operations(document()) {
            assert!(page.contains(&anchor(method, path)), "{method} {path}");
        }
        assert!(page.contains("id=\"schema-ErrorBody\""));
        assert!(!page.contains("<script"));
        let hostile = serde_json::json!({"info": {"title": "<script>x</script>"},
            "paths": {"/a\"><img>": {"get": {"responses": {}}}}});
        let page = render(&hostile);
        assert!(!page.contains("<script>x"));
        assert!(!page.contains("<img>"));
    }
}
