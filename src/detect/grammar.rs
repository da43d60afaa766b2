//! The Chinese plate grammar (GA 36): province character, issuing-authority letter, 5 characters
//! (6 on new-energy plates), special endings; and the character classes the constrained decoder
//! walks through.

/// The 31 provincial-level abbreviations.
pub const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
/// Letters on plates: A–Z without I and O (they read as 1 and 0).
pub const LETTERS: &str = "ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const DIGITS: &str = "0123456789";
/// Endings that replace the last character.
pub const ENDINGS: &str = "学挂警港澳使领";

/// Every character a plate can hold, in a fixed order (the decoder's alphabet).
pub fn alphabet() -> Vec<char> {
    PROVINCES.chars().chain(LETTERS.chars()).chain(DIGITS.chars()).chain(ENDINGS.chars()).collect()
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
}
