//! Record identifiers. Every id is a UUIDv7 made by whoever creates the record.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
    specta::Type,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        #[cfg(feature = "sqlite")]
        sqlite_text!($name);
    };
}

/// SQLite keeps an id as TEXT, hyphenated and lower case, as `Display` writes it.
#[cfg(feature = "sqlite")]
macro_rules! sqlite_text {
    ($name:ident) => {
        impl sqlx::Type<sqlx::Sqlite> for $name {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <String as sqlx::Type<sqlx::Sqlite>>::type_info()
            }

            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, sqlx::Sqlite>>::encode(self.0.to_string(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for $name {
            fn decode(
                value: sqlx::sqlite::SqliteValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Sqlite>>::decode(value)?;
                Ok(Self(Uuid::parse_str(text)?))
            }
        }
    };
}

id_type!(
    /// A tenant: one organisation's isolated helpdesk.
    TenantId
);
id_type!(
    /// A person, identified across tenants by their issuer and subject.
    UserId
);
id_type!(TicketId);
id_type!(CommentId);
id_type!(CustomerId);
id_type!(InvitationId);
id_type!(ActivityId);
id_type!(ExpenseId);
id_type!(CalendarId);
id_type!(SlaPolicyId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_7_and_time_ordered() {
        let a = TicketId::new();
        let b = TicketId::new();
        assert_eq!(
            a.as_uuid().get_version_num(),
            7,
            "ids must be UUIDv7 so they sort by creation"
        );
        assert!(a < b, "a later id sorts after an earlier one");
    }

    #[test]
    fn ids_serialise_as_plain_uuid_strings() {
        let id = CustomerId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: CustomerId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }
}
