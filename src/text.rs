//! Small text helpers shared by the interface, the command line and reports.

/// `text` with its first letter upper-case ("left out 2 images" → "Left out 2 images").
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn capitalises_the_first_letter_only() {
        assert_eq!(super::capitalised("élan vital"), "Élan vital");
        assert_eq!(super::capitalised(""), "");
    }
}
