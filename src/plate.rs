//! Chinese licence plates (GA 36) as text: the province characters, the letters and endings a
//! plate may hold, the layouts of each colour class, whether a string is a plate, and the one
//! normal form plates are compared and stored in.
//!
//! A leaf: it imports nothing from the rest of the crate, so detection (the reader and its
//! constrained decoder, watchlists), the simulator (which generates plates), geography and the API
//! all take plate knowledge from one place instead of each writing the province list again.

/// The 31 provincial-level abbreviations a civil plate starts with.
pub const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
/// Letters on plates: A–Z without I and O (they read as 1 and 0).
pub const LETTERS: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
/// Digits, then letters: what a serial position may hold.
pub const ALNUM: &str = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Endings that replace the last character: driving school, trailer, police, Hong Kong, Macao,
/// embassy, consulate.
pub const ENDINGS: &str = "学挂警港澳使领";

/// Every character a plate can hold, in a fixed order (the plate reader's decoding alphabet).
pub fn alphabet() -> Vec<char> {
    PROVINCES.chars().chain(LETTERS.chars()).chain(DIGITS.chars()).chain(ENDINGS.chars()).collect()
}

/// Upper case, no spaces, dots or dashes: `豫A·12345` and `豫a 12345` are the same plate.
pub fn normalise(p: &str) -> String {
    p.chars().filter(|c| !c.is_whitespace() && !"·.-_".contains(*c)).flat_map(|c| c.to_uppercase()).collect()
}

/// What one position may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Province,
    Letter,
    /// Digit or letter.
    Alnum,
    /// Digit, letter or a special ending.
    Last,
    /// 警 only (police plates).
    Police,
}

impl Class {
    pub fn allows(self, c: char) -> bool {
        match self {
            Class::Province => PROVINCES.contains(c),
            Class::Letter => LETTERS.contains(c),
            Class::Alnum => LETTERS.contains(c) || DIGITS.contains(c),
            Class::Last => LETTERS.contains(c) || DIGITS.contains(c) || ENDINGS.contains(c),
            Class::Police => c == '警',
        }
    }
}

/// Plate colour classes (GA/T 1400 PlateColor names them by colour too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlateColor {
    Blue,
    Yellow,
    Green,
    White,
    Black,
}

impl PlateColor {
    pub const ALL: [PlateColor; 5] =
        [PlateColor::Blue, PlateColor::Yellow, PlateColor::Green, PlateColor::White, PlateColor::Black];

    pub fn as_str(self) -> &'static str {
        match self {
            PlateColor::Blue => "blue",
            PlateColor::Yellow => "yellow",
            PlateColor::Green => "green",
            PlateColor::White => "white",
            PlateColor::Black => "black",
        }
    }

    /// The templates a plate of this colour class follows, each with a penalty (nats) for
    /// readings that take it: the class's own layout costs nothing, the others something, so a
    /// mis-measured colour can still be overruled by a clear reading. New-energy (green) plates
    /// have 8 characters, the others 7; police (white) plates end in 警.
    pub fn templates(self) -> &'static [(&'static [Class], f32)] {
        use Class::*;
        const SEVEN: &[Class] = &[Province, Letter, Alnum, Alnum, Alnum, Alnum, Last];
        const EIGHT: &[Class] = &[Province, Letter, Alnum, Alnum, Alnum, Alnum, Alnum, Alnum];
        const POLICE: &[Class] = &[Province, Letter, Alnum, Alnum, Alnum, Alnum, Police];
        match self {
            PlateColor::Green => &[(EIGHT, 0.0), (SEVEN, 4.0)],
            PlateColor::White => &[(POLICE, 0.0), (SEVEN, 3.0), (EIGHT, 4.0)],
            _ => &[(SEVEN, 0.0), (EIGHT, 4.0)],
        }
    }
}

impl std::fmt::Display for PlateColor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PlateColor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        PlateColor::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown plate colour {s:?}; one of blue, yellow, green, white, black"))
    }
}

/// Why a string is not a plate, or Ok.
pub fn check(plate: &str) -> Result<(), String> {
    let cs: Vec<char> = plate.chars().collect();
    let tmpl: &[Class] = match cs.len() {
        7 => PlateColor::Blue.templates()[0].0,
        8 => PlateColor::Green.templates()[0].0,
        n => return Err(format!("{n} characters; a plate has 7 (8 on new-energy plates)")),
    };
    for (i, (c, cl)) in cs.iter().zip(tmpl).enumerate() {
        if !cl.allows(*c) {
            return Err(format!("character {} ({c}) cannot be {cl:?}", i + 1));
        }
    }
    if cs.len() == 8 && !(matches!(cs[2], 'D' | 'F') || matches!(cs[7], 'D' | 'F')) {
        return Err("a new-energy plate has D or F as its third or last character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates() {
        assert!(check("豫A12345").is_ok());
        assert!(check("豫AD12345").is_ok());
        assert!(check("豫A1234警").is_ok());
        assert!(check("粤Z1234港").is_ok());
        assert!(check("豫I12345").is_err());
        assert!(check("豫A1234").is_err());
        assert!(check("AA12345").is_err());
        assert!(check("豫A12O45").is_err());
        assert!(check("豫A警2345").is_err());
        assert!(check("豫AA12345").is_err());
        assert_eq!(alphabet().len(), 31 + 24 + 10 + 7);
    }

    #[test]
    fn alnum_is_digits_then_letters() {
        assert_eq!(ALNUM, format!("{DIGITS}{LETTERS}"));
        assert_eq!(PROVINCES.chars().count(), 31);
    }

    #[test]
    fn colours_parse_and_print() {
        for c in PlateColor::ALL {
            assert_eq!(c.as_str().parse::<PlateColor>().unwrap(), c);
            assert_eq!(c.to_string().to_uppercase().parse::<PlateColor>().unwrap(), c);
        }
        assert!("red".parse::<PlateColor>().unwrap_err().contains("red"));
    }

    #[test]
    fn normal_form() {
        assert_eq!(normalise("豫a·123.4-5"), "豫A12345");
        assert_eq!(normalise(" 豫A 12_345\t"), "豫A12345");
        assert_eq!(normalise(""), "");
    }
}
