//! A serde `Serializer` that feeds a value into a `TraceHasher` in a fixed binary encoding: every
//! scalar as one or more 64-bit words, strings as their length and bytes, options and sequences
//! with a marker or length first. Field names are not hashed (their order is fixed by the type);
//! `kind` names are, as strings. It never fails and allocates nothing.

use serde::ser::{self, Serialize};

use super::TraceHasher;

pub(crate) struct HashSerializer<'a> {
    pub hasher: &'a mut TraceHasher,
}

/// Never produced: hashing cannot fail. Exists because serde's traits require an error type.
#[derive(Debug)]
pub(crate) struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("hashing cannot fail")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: std::fmt::Display>(_message: T) -> Self {
        Never
    }
}

type Done = Result<(), Never>;

impl<'s, 'a> ser::Serializer for &'s mut HashSerializer<'a> {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, value: bool) -> Done {
        self.hasher.word(1 + u64::from(value));
        Ok(())
    }
    fn serialize_i8(self, value: i8) -> Done {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i16(self, value: i16) -> Done {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i32(self, value: i32) -> Done {
        self.serialize_i64(i64::from(value))
    }
    fn serialize_i64(self, value: i64) -> Done {
        self.hasher.word(value as u64);
        Ok(())
    }
    fn serialize_u8(self, value: u8) -> Done {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u16(self, value: u16) -> Done {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u32(self, value: u32) -> Done {
        self.serialize_u64(u64::from(value))
    }
    fn serialize_u64(self, value: u64) -> Done {
        self.hasher.word(value);
        Ok(())
    }
    fn serialize_f32(self, value: f32) -> Done {
        self.serialize_f64(f64::from(value))
    }
    fn serialize_f64(self, value: f64) -> Done {
        self.hasher.word(value.to_bits());
        Ok(())
    }
    fn serialize_char(self, value: char) -> Done {
        self.hasher.word(u64::from(u32::from(value)));
        Ok(())
    }
    fn serialize_str(self, value: &str) -> Done {
        self.hasher.text(value);
        Ok(())
    }
    fn serialize_bytes(self, value: &[u8]) -> Done {
        self.hasher.word(value.len() as u64);
        for chunk in value.chunks(8) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            self.hasher.word(u64::from_le_bytes(bytes));
        }
        Ok(())
    }
    fn serialize_none(self) -> Done {
        self.hasher.word(0);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Done {
        self.hasher.word(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.hasher.word(0);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Done {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Done {
        self.hasher.text(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.hasher.text(variant);
        value.serialize(self)
    }
    fn serialize_seq(self, length: Option<usize>) -> Result<Self, Never> {
        self.hasher.word(length.map_or(u64::MAX, |length| length as u64));
        Ok(self)
    }
    fn serialize_tuple(self, length: usize) -> Result<Self, Never> {
        self.hasher.word(length as u64);
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, length: usize) -> Result<Self, Never> {
        self.serialize_tuple(length)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        length: usize,
    ) -> Result<Self, Never> {
        self.hasher.text(variant);
        self.serialize_tuple(length)
    }
    fn serialize_map(self, length: Option<usize>) -> Result<Self, Never> {
        self.serialize_seq(length)
    }
    fn serialize_struct(self, _name: &'static str, _length: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _length: usize,
    ) -> Result<Self, Never> {
        self.hasher.text(variant);
        Ok(self)
    }
}

impl ser::SerializeSeq for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeMap for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Done {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, _key: &'static str, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn skip_field(&mut self, _key: &'static str) -> Done {
        // A skipped optional field still takes a place, so that the fields after it never shift.
        self.hasher.word(u64::MAX - 1);
        Ok(())
    }
    fn end(self) -> Done {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut HashSerializer<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, _key: &'static str, value: &T) -> Done {
        value.serialize(&mut **self)
    }
    fn end(self) -> Done {
        Ok(())
    }
}
