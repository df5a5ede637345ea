//! A statement built piece by piece with `$N` placeholders, which both backends read
//! (`QueryBuilder<Any>` writes `?`, which PostgreSQL refuses).

use std::fmt::Write as _;

use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, Arguments as _, Encode, Executor, Type};

pub(super) struct Sql<'q> {
    text: String,
    args: AnyArguments<'q>,
    count: usize,
    /// Prepared once per connection and kept (sqlx's default), or planned at each run.
    kept: bool,
}

impl<'q> Sql<'q> {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: AnyArguments::default(),
            count: 0,
            kept: true,
        }
    }

    /// Plans the statement for its values each time it runs rather than once per connection:
    /// a plan kept from when a table was nearly empty goes on scanning it as it grows.
    pub fn planned_each_time(&mut self) -> &mut Self {
        self.kept = false;
        self
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind<T: 'q + Encode<'q, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        self.count += 1;
        // Writing to a String cannot fail; nor can adding an encodable value.
        let _ = write!(self.text, "${}", self.count);
        let _ = self.args.add(value);
        self
    }

    /// Appends `(a, b, ...), (c, d, ...)`: one parenthesised tuple per item.
    pub fn tuples<I: IntoIterator>(
        &mut self,
        items: I,
        mut each: impl FnMut(&mut Tuple<'_, 'q>, I::Item),
    ) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            each(
                &mut Tuple {
                    sql: self,
                    first: true,
                },
                item,
            );
            self.push(")");
        }
        self
    }

    pub async fn execute<'c, E>(self, executor: E) -> Result<AnyQueryResult, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query_with(&self.text, self.args)
            .persistent(self.kept)
            .execute(executor)
            .await
    }

    pub async fn fetch_optional<'c, E>(self, executor: E) -> Result<Option<AnyRow>, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query_with(&self.text, self.args)
            .persistent(self.kept)
            .fetch_optional(executor)
            .await
    }

    pub async fn fetch_all<'c, E>(self, executor: E) -> Result<Vec<AnyRow>, sqlx::Error>
    where
        E: Executor<'c, Database = Any>,
    {
        sqlx::query_with(&self.text, self.args)
            .persistent(self.kept)
            .fetch_all(executor)
            .await
    }
}

/// One parenthesised tuple of [`Sql::tuples`].
pub(super) struct Tuple<'s, 'q> {
    sql: &'s mut Sql<'q>,
    first: bool,
}

impl<'q> Tuple<'_, 'q> {
    pub fn bind<T: 'q + Encode<'q, Any> + Type<Any>>(&mut self, value: T) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.bind(value);
        self
    }

    /// A literal SQL value in the tuple.
    pub fn push(&mut self, text: &str) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.push(text);
        self
    }
}
