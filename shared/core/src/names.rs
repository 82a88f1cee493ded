//! Person-name knowledge for matching: nicknames (`bob` is `robert`) and initials (`j` is
//! `john`). English-language names; the table is data, small on purpose, and easy to extend.

use std::sync::OnceLock;

/// Looked up twice per given-name comparison: hashed with foldhash, not SipHash (the names are
/// the built-in table's, not input an attacker could choose to collide).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// Groups of names one person may go by: the formal name first, then its common short forms.
/// A name may sit in more than one group (`fred`: frederick, alfred).
const GROUPS: &[&[&str]] = &[
    &["abigail", "abby", "abbie", "gail"],
    &["albert", "al", "bert", "bertie"],
    &["alexander", "alex", "alec", "sandy", "xander", "lex"],
    &["alexandra", "alex", "alexa", "sandra", "sandy", "lexi"],
    &["alfred", "alf", "alfie", "fred", "freddie"],
    &["andrew", "andy", "drew"],
    &["anthony", "tony", "ant"],
    &["barbara", "barb", "babs"],
    &["benjamin", "ben", "benny", "benji"],
    &["bradley", "brad"],
    &["catherine", "cathy", "cath", "kate", "katie", "kat", "cat"],
    &["katherine", "kathy", "kate", "katie", "kat", "kath", "kay"],
    &["charles", "charlie", "chuck", "chas", "chaz"],
    &["charlotte", "charlie", "lottie", "lotte"],
    &["christina", "chris", "tina", "christie"],
    &["christine", "chris", "tina", "chrissy"],
    &["christopher", "chris", "kit", "topher"],
    &["daniel", "dan", "danny"],
    &["david", "dave", "davy", "davie"],
    &["deborah", "debbie", "deb", "debra"],
    &["donald", "don", "donny"],
    &["dorothy", "dot", "dottie", "dolly"],
    &["edward", "ed", "eddie", "ted", "teddy", "ned"],
    &["elizabeth", "liz", "lizzie", "beth", "betty", "bess", "eliza", "libby", "lisa", "betsy"],
    &["eleanor", "ellie", "nell", "nora", "elle"],
    &["emily", "em", "emmy", "millie"],
    &["frances", "fran", "frankie", "fanny"],
    &["francis", "frank", "frankie", "fran"],
    &["frederick", "fred", "freddie", "freddy", "rick"],
    &["gabriel", "gabe"],
    &["gabrielle", "gabby", "gabi"],
    &["gerald", "gerry", "jerry"],
    &["gregory", "greg"],
    &["harold", "harry", "hal"],
    &["henry", "harry", "hank", "hal"],
    &["isabella", "bella", "izzy", "isabel", "isobel"],
    &["jacob", "jake", "jack"],
    &["james", "jim", "jimmy", "jamie", "jas"],
    &["jennifer", "jen", "jenny", "jenn"],
    &["jessica", "jess", "jessie"],
    &["john", "jack", "johnny", "jon"],
    &["jonathan", "jon", "jonny", "nathan"],
    &["joseph", "joe", "joey", "jos"],
    &["joshua", "josh"],
    &["judith", "judy", "jude"],
    &["kenneth", "ken", "kenny"],
    &["lawrence", "larry", "laurie"],
    &["leonard", "len", "lenny", "leo"],
    &["margaret", "maggie", "meg", "peggy", "marge", "madge", "greta", "molly"],
    &["matthew", "matt", "matty"],
    &["michael", "mike", "mick", "mickey", "mikey", "mich"],
    &["nicholas", "nick", "nicky", "nico"],
    &["nicola", "nicky", "nikki"],
    &["patricia", "pat", "patty", "trish", "tricia"],
    &["patrick", "pat", "paddy", "rick"],
    &["peter", "pete"],
    &["philip", "phil", "pip"],
    &["rebecca", "becky", "becca", "bec"],
    &["richard", "rich", "rick", "ricky", "dick", "richie"],
    &["robert", "rob", "robbie", "bob", "bobby", "bert"],
    &["ronald", "ron", "ronnie"],
    &["samantha", "sam", "sammy"],
    &["samuel", "sam", "sammy"],
    &["sarah", "sally", "sadie"],
    &["stephen", "steve", "stevie", "steph"],
    &["steven", "steve", "stevie"],
    &["stephanie", "steph", "stephie"],
    &["susan", "sue", "susie", "suzy"],
    &["theodore", "theo", "ted", "teddy"],
    &["thomas", "tom", "tommy"],
    &["timothy", "tim", "timmy"],
    &["victoria", "vicky", "tori", "vic"],
    &["walter", "walt", "wally"],
    &["william", "will", "bill", "billy", "willie", "liam"],
    &["zachary", "zach", "zack"],
];

fn groups_of() -> &'static HashMap<&'static str, Vec<u16>> {
    static INDEX: OnceLock<HashMap<&'static str, Vec<u16>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m: HashMap<&'static str, Vec<u16>> = HashMap::default();
        for (i, g) in GROUPS.iter().enumerate() {
            for name in *g {
                m.entry(name).or_default().push(i as u16);
            }
        }
        m
    })
}

/// Whether two different (normalised, lower-case) given names are known forms of one name.
pub fn nicknames(a: &str, b: &str) -> bool {
    let index = groups_of();
    match (index.get(a), index.get(b)) {
        (Some(x), Some(y)) => x.iter().any(|g| y.contains(g)),
        _ => false,
    }
}

/// Whether one value is a single-letter initial (`j`, `j.` after normalising) of the other.
pub fn initial_of(a: &str, b: &str) -> bool {
    let single = |s: &str| {
        let mut c = s.chars();
        c.next().filter(|_| c.next().is_none())
    };
    match (single(a), single(b)) {
        (Some(x), None) => b.starts_with(x),
        (None, Some(y)) => a.starts_with(y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nickname_groups() {
        assert!(nicknames("bill", "william"));
        assert!(nicknames("liz", "beth"), "two forms of one name");
        assert!(nicknames("fred", "alfred") && nicknames("fred", "frederick"));
        assert!(!nicknames("alfred", "frederick"), "sharing a nickname does not make two formal names one");
        assert!(!nicknames("anna", "hannah"));
    }

    #[test]
    fn initials() {
        assert!(initial_of("j", "john") && initial_of("john", "j"));
        assert!(!initial_of("j", "j") && !initial_of("k", "john") && !initial_of("jo", "john"));
    }
}
