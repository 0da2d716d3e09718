//! What one record becomes in the database: the parameters `$1, $2, …` of the sink's
//! statement.
//!
//! Invariant: the parameters are the row's own values, borrowed when the batch is sent;
//! nothing is converted to text on the way (the binary protocol carries them).

use tokio_postgres::types::ToSql;

/// The parameters of one execution of the sink's statement, in order.
///
/// Tuples of up to twelve values that PostgreSQL can take (`String`, `i64`, `f64`,
/// `bool`, `Option<…>`, …) are rows, and so is a vector of boxed values for rows whose
/// shape is known only at run time.
pub trait SqlRow: Send + std::fmt::Debug + 'static {
    /// The statement's parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)>;
}

macro_rules! tuple_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: ToSql + Sync + Send + 'static),+> SqlRow for ($($t,)+) {
            fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
                vec![$(&self.$i),+]
            }
        }
    };
}

tuple_row!(A 0);
tuple_row!(A 0, B 1);
tuple_row!(A 0, B 1, C 2);
tuple_row!(A 0, B 1, C 2, D 3);
tuple_row!(A 0, B 1, C 2, D 3, E 4);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

impl SqlRow for Vec<Box<dyn ToSql + Sync + Send>> {
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tuple_gives_its_values_in_order() {
        let row = ("sensor-1".to_string(), 7i64, 21.5f64);
        let params = row.params();
        assert_eq!(params.len(), 3);
        assert_eq!(format!("{:?}", params[0]), "\"sensor-1\"");
        assert_eq!(format!("{:?}", params[2]), "21.5");
    }
}
