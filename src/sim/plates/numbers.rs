//! Random plate numbers of each colour class, following the GA 36 grammar in [`crate::plate`].

use rand::Rng;

use crate::plate::{ALNUM, LETTERS, PROVINCES, PlateColor};

fn pick(rng: &mut impl Rng, set: &str) -> char {
    let n = set.chars().count();
    set.chars().nth(rng.gen_range(0..n)).expect("non-empty set")
}

/// A random plate number of colour class `color`, following GA 36: province, authority letter,
/// then five characters (six on a green plate, the first D or F); yellow plates may end in 学 or
/// 挂, police plates end in 警, black plates may be Guangdong's 粤Z…港 / 粤Z…澳.
pub fn random_plate(rng: &mut impl Rng, color: PlateColor) -> String {
    let mut s = String::new();
    s.push(pick(rng, PROVINCES));
    s.push(pick(rng, LETTERS));
    let serial = |rng: &mut _, s: &mut String, n: usize| {
        for _ in 0..n {
            s.push(pick(rng, ALNUM));
        }
    };
    match color {
        PlateColor::Green => {
            s.push(if rng.gen_bool(0.5) { 'D' } else { 'F' });
            serial(rng, &mut s, 5);
        }
        PlateColor::White => {
            serial(rng, &mut s, 4);
            s.push('警');
        }
        PlateColor::Yellow if rng.gen_bool(0.3) => {
            serial(rng, &mut s, 4);
            s.push(if rng.gen_bool(0.5) { '学' } else { '挂' });
        }
        PlateColor::Black if rng.gen_bool(0.3) => {
            s.clear();
            s.push_str("粤Z");
            serial(rng, &mut s, 4);
            s.push(if rng.gen_bool(0.5) { '港' } else { '澳' });
        }
        PlateColor::Blue | PlateColor::Yellow | PlateColor::Black => serial(rng, &mut s, 5),
    }
    s
}

/// Whether `p` is a plate `random_plate` could have made for `color` (the tests' check).
#[cfg(test)]
pub(super) fn check_grammar(p: &str, color: PlateColor) -> Result<(), String> {
    let c: Vec<char> = p.chars().collect();
    let alnum = |ch: char| ALNUM.contains(ch);
    let fail = || Err(format!("{color} plate {p:?}"));
    if !PROVINCES.contains(c[0]) || !LETTERS.contains(c[1]) {
        return fail();
    }
    let ok = match color {
        PlateColor::Green => c.len() == 8 && (c[2] == 'D' || c[2] == 'F') && c[3..].iter().all(|&ch| alnum(ch)),
        PlateColor::White => c.len() == 7 && c[2..6].iter().all(|&ch| alnum(ch)) && c[6] == '警',
        PlateColor::Yellow => {
            c.len() == 7 && c[2..6].iter().all(|&ch| alnum(ch)) && (alnum(c[6]) || c[6] == '学' || c[6] == '挂')
        }
        PlateColor::Black => {
            c.len() == 7
                && c[2..6].iter().all(|&ch| alnum(ch))
                && (alnum(c[6]) || ((c[6] == '港' || c[6] == '澳') && c[0] == '粤' && c[1] == 'Z'))
        }
        PlateColor::Blue => c.len() == 7 && c[2..].iter().all(|&ch| alnum(ch)),
    };
    if ok { Ok(()) } else { fail() }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn generated_plates_follow_the_grammar() {
        let mut rng = StdRng::seed_from_u64(7);
        for color in PlateColor::ALL {
            let mut special = 0;
            for _ in 0..600 {
                let p = random_plate(&mut rng, color);
                check_grammar(&p, color).unwrap();
                special += p.chars().any(|ch| "学挂港澳".contains(ch)) as usize;
                assert!(!p.contains('I') && !p.contains('O'), "{p}");
            }
            match color {
                PlateColor::Yellow | PlateColor::Black => assert!(special > 60, "{color}: {special}"),
                _ => assert_eq!(special, 0),
            }
        }
        assert!(check_grammar("京A12345", PlateColor::Green).is_err());
        assert!(check_grammar("京I12345", PlateColor::Blue).is_err());
        assert_eq!(PROVINCES.chars().count(), 31);
    }
}
