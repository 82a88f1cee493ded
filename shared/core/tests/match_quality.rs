//! What the customer schema's matching knows: swapped names, nicknames and initials, impossible
//! dates with a typo, people who moved, and household members who share a family name and an
//! address. Each case is decided through the hub (memory store) and explained per attribute.
mod common;

use common::{customer, feed, hub};
use mdm_core::hub::Hub;
use mdm_core::matching::{Band, MatchDecision, MatchResult};
use mdm_core::record::validate;
use mdm_core::store::memory::MemoryStore;
use mdm_core::SchemaRegistry;
use serde_json::{json, Value};
use std::sync::Arc;

fn person(given: &str, family: &str, dob: &str, email: &str, street: &str, postcode: &str) -> Value {
    json!({"given_name": given, "family_name": family, "date_of_birth": dob, "email": email,
           "street_number": "12", "address_line1": street, "locality": "Ridgeford Park",
           "postcode": postcode, "region": "NSW"})
}

/// Stores `first`, then matches `second` against it (nothing written for the second).
async fn against(first: Value, second: Value) -> MatchResult {
    let hub = hub();
    feed(&hub, customer("crm", "c-1", 1, first)).await;
    let record = validate(hub.registry(), &customer("web", "w-1", 1, second), hub.now_ms()).expect("valid");
    hub.match_record(&record).await.expect("match")
}

fn level<'a>(r: &'a MatchResult, attribute: &str) -> &'a str {
    r.candidates[0].attributes.iter().find(|a| a.attribute == attribute).map_or("", |a| a.level.as_str())
}

#[tokio::test]
async fn swapped_names_link_and_say_so() {
    let anna = person("Anna", "Kowalski", "1984-07-21", "", "Stanley Street", "2150");
    let swapped = person("Kowalski", "Anna", "1984-07-21", "", "Stanley St", "2150");
    let r = against(anna, swapped).await;
    assert!(matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
    assert_eq!(level(&r, "given_name"), "swapped:exact");
    assert_eq!(level(&r, "family_name"), "swapped:exact");
    assert_eq!(level(&r, "address_line1"), "exact", "St is Street");
}

#[tokio::test]
async fn nicknames_initials_and_impossible_dates() {
    let bob = person("Robert", "Okafor", "1962-11-03", "", "Pinkerton Circuit", "4560");
    let r = against(bob.clone(), person("Bob", "Okafor", "1962-11-03", "", "Pinkerton Cct", "4560")).await;
    assert_eq!(level(&r, "given_name"), "nickname_or_similarity>=0.92");
    let r = against(bob.clone(), person("R", "Okafor", "1962-11-03", "", "Pinkerton Circuit", "4560")).await;
    assert_eq!(level(&r, "given_name"), "initial");
    assert!(matches!(r.decision, MatchDecision::Link { .. }));
    // 1962-19-03 is no date: kept raw, yet one digit from the stored one.
    let r = against(bob, person("Robert", "Okafor", "19621903", "", "Pinkerton Circuit", "4560")).await;
    assert_eq!(level(&r, "date_of_birth"), "typo_or_swap");
}

#[tokio::test]
async fn a_move_counts_once_against_a_match() {
    let before = person("Priya", "Raman", "1990-02-14", "priya.raman@example.com", "Salkauskas Crescent", "4566");
    let mut after = person("Priya", "Raman", "1990-02-14", "", "Macquoid Place", "2135");
    after["street_number"] = json!("905");
    after["locality"] = json!("South Grafton");
    after["region"] = json!("VIC");
    let r = against(before, after).await;
    let floor = r.candidates[0].attributes.iter().find(|a| a.attribute == "group:address").expect("group line");
    assert_eq!(floor.level, "floored");
    let address: f64 = r.candidates[0]
        .attributes
        .iter()
        .filter(|a| {
            ["street_number", "address_line1", "locality", "postcode", "region", "group:address"]
                .contains(&a.attribute.as_str())
        })
        .map(|a| a.weight)
        .sum();
    assert!((address + 6.0).abs() < 0.01, "the whole address counts -6: {address}");
    // Name and birth date agreeing, the whole address not: the move costs 6 bits, not 24, which
    // leaves the pair at the link threshold (a review at worst), never a new golden record.
    assert!(
        matches!(r.decision, MatchDecision::Link { .. } | MatchDecision::Review { .. }),
        "same name and birth date: {r:?}"
    );
    let names_and_birth: f64 = r.candidates[0]
        .attributes
        .iter()
        .filter(|a| ["given_name", "family_name", "date_of_birth"].contains(&a.attribute.as_str()))
        .map(|a| a.weight)
        .sum();
    assert!((r.candidates[0].score - (names_and_birth - 6.0)).abs() < 0.05, "{r:?}");
}

#[tokio::test]
async fn household_members_are_reviewed_not_linked() {
    let dennis = person("Dennis", "Halnorcal", "1973-10-14", "dennis.h@example.com", "Ul Court", "3159");
    let sibling = person("Christine", "Halnorcal", "1969-02-27", "christine.h@example.com", "Ul Court", "3159");
    let r = against(dennis.clone(), sibling).await;
    assert_eq!(r.candidates[0].blocked_by.as_deref(), Some("household_member_by_email"));
    assert_eq!(r.candidates[0].band, Band::Review, "{r:?}");
    // The same person with a typo'd name and another e-mail address still links.
    let same = person("Denis", "Halnorcal", "1973-10-14", "d.halnorcal@example.org", "Ul Court", "3159");
    let r = against(dennis, same).await;
    assert!(r.candidates[0].blocked_by.is_none());
    assert!(matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
}

/// The customer schema with the address group as `mdm train --truth` writes it from generated
/// people who live in households (its cap, and with `within` the `u` of the other attributes
/// among different people sharing a whole address), or with the cap alone.
fn household_schema(within: bool) -> Arc<SchemaRegistry> {
    household_schema_linking_at(within, 24.0)
}

/// The schema text with its address group's bounds (`max_weight = …, min_weight = -6.0 }`, the
/// first group) replaced by `group`.
fn with_address_group(text: &str, group: &str) -> String {
    let start = text.find("max_weight = ").expect("the address group's cap");
    let end = start + text[start..].find("min_weight = -6.0 }").expect("its floor") + "min_weight = -6.0 }".len();
    format!("{}{group}{}", &text[..start], &text[end..])
}

/// [`household_schema`] with its link threshold at `link` (the review threshold 8 below).
fn household_schema_linking_at(within: bool, link: f64) -> Arc<SchemaRegistry> {
    let text = household_text(within, link);
    Arc::new(SchemaRegistry::from_texts([("customer.toml".to_owned(), text)]).expect("valid schema"))
}

/// The text of [`household_schema_linking_at`].
fn household_text(within: bool, link: f64) -> String {
    let text = mdm_core::schema::built_in_text("customer").expect("built-in customer schema");
    let table = ", within = { date_of_birth = [0.0590537, 0.00668192, 0.0114977], email = [0.000170271, 0.000170271], \
                 family_name = [0.802694, 0.113118, 0.0160043], given_name = [0.00151948, 0.000182338, 0.00516623, 0.00334286], \
                 phone = [0.000240442, 0.000240442] }";
    let group = format!("max_weight = 18.8, min_weight = -6.0{} }}", if within { table } else { "" });
    let text: String = with_address_group(text, &group)
        .lines()
        .map(|line| match line {
            l if l.starts_with("link_threshold = ") => format!("link_threshold = {link:.1}\n"),
            l if l.starts_with("review_threshold = ") => format!("review_threshold = {:.1}\n", link - 8.0),
            l => format!("{l}\n"),
        })
        .collect();
    assert!(text.contains(&group), "the built-in address group line moved");
    text
}

async fn against_with(registry: Arc<SchemaRegistry>, first: Value, second: Value) -> MatchResult {
    let hub = Hub::new(registry, MemoryStore::new());
    feed(&hub, customer("crm", "c-1", 1, first)).await;
    let record = validate(hub.registry(), &customer("web", "w-1", 1, second), hub.now_ms()).expect("valid");
    hub.match_record(&record).await.expect("match")
}

#[tokio::test]
async fn twins_at_one_address_are_told_apart_by_what_households_share() {
    let lena = person("Lena", "Marsh", "1991-05-17", "", "Ferrier Street", "2611");
    let twin = person("Tobias", "Marsh", "1991-05-17", "", "Ferrier Street", "2611");
    // Weighed as if family name, birth date and address were independent, a twin links.
    let r = against_with(household_schema(false), lena.clone(), twin.clone()).await;
    assert!(matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
    // Among people who share an address, a shared family name is the rule: the twin does not.
    let r = against_with(household_schema(true), lena.clone(), twin).await;
    assert!(!matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
    let line = r.candidates[0]
        .attributes
        .iter()
        .find(|a| a.attribute == "group:address" && a.level == "within")
        .expect("the within line, after the cap's");
    assert!(line.weight < -10.0, "{line:?}");
    let sum: f64 = r.candidates[0].attributes.iter().map(|a| a.weight).sum();
    assert!((sum - r.candidates[0].score).abs() < 0.01, "the lines add up to the score: {r:?}");
    // The same person at the same address, under a nickname, still links.
    let r =
        against_with(household_schema(true), lena, person("Lenny", "Marsh", "1991-05-17", "", "Ferrier St", "2611"))
            .await;
    assert!(matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
}

/// A twin whose names were entered the other way round: read crosswise, a given name agrees with
/// a family name. Whichever of the two records is the swapped one, among people who share an
/// address that is the shared family name agreeing, and the twins stay apart; the same person's
/// swapped record still links.
#[tokio::test]
async fn a_twin_with_swapped_names_is_still_a_twin() {
    let lena = person("Lena", "Marsh", "1991-05-17", "", "Ferrier Street", "2611");
    let swapped_twin = person("Marsh", "Tobias", "1991-05-17", "", "Ferrier Street", "2611");
    for (first, second) in [(swapped_twin.clone(), lena.clone()), (lena.clone(), swapped_twin)] {
        let r = against_with(household_schema(true), first, second).await;
        assert!(!matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
        assert!(r.candidates[0].attributes.iter().any(|a| a.level.starts_with("swapped:")), "{r:?}");
    }
    let swapped_lena = person("Marsh", "Lena", "1991-05-17", "", "Ferrier Street", "2611");
    let r = against_with(household_schema(true), swapped_lena, lena).await;
    assert!(matches!(r.decision, MatchDecision::Link { .. }), "{r:?}");
}

/// The built-in customer schema whose name group's `within` table also holds the e-mail address:
/// among different people of one name, mailbox names agree one time in five
/// (`first.last@` at two providers).
fn namesake_schema() -> Arc<SchemaRegistry> {
    let text = with_namesake_mailboxes(mdm_core::schema::built_in_text("customer").expect("built-in customer schema"));
    Arc::new(SchemaRegistry::from_texts([("customer.toml".to_owned(), text)]).expect("valid schema"))
}

/// `text` with the e-mail address in its name group's `within` table (see [`namesake_schema`]).
fn with_namesake_mailboxes(text: &str) -> String {
    let start = text.find("name = \"name\"").expect("the name group");
    let at = start + text[start..].find("within = { ").expect("its within table") + "within = { ".len();
    format!("{}email = [0.0000223487, 0.20759], {}", &text[..at], &text[at..])
}

/// Two people of one name elsewhere, born decades apart, whose mailboxes agree
/// (`robert.thompson@` at two providers): what a shared mailbox says among namesakes is weighed
/// when the names agree, and a misspelt family name is the same name — a misspelling does not
/// turn the shared mailbox back into strong evidence.
#[tokio::test]
async fn namesakes_sharing_a_mailbox_name_stay_apart_when_one_name_is_misspelt() {
    let robert = person("Robert", "Thompson", "1981-09-04", "robert.thompson@live.example", "Halridge Road", "2790");
    for family in ["Thompson", "Thompsgon"] {
        let mut namesake = person("Robert", family, "1953-04-21", "robert.thompson@mail.example", "Bar Road", "4531");
        namesake["locality"] = json!("Quindal");
        namesake["region"] = json!("QLD");
        let r = against_with(namesake_schema(), robert.clone(), namesake).await;
        assert_eq!(level(&r, "email"), "same_mailbox", "{r:?}");
        assert!(!matches!(r.decision, MatchDecision::Link { .. }), "{family}: {r:?}");
        assert!(r.candidates[0].attributes.iter().any(|a| a.attribute == "group:name" && a.level == "within"), "{r:?}");
    }
}

/// One person at one address under one name, with the same mailbox name at another provider:
/// the pair agrees on the address group and on the name group, and both groups' `within` tables
/// weigh the e-mail address (among housemates, among namesakes). It weighs the less of the two,
/// once: adding both tables' differences to its one weight counted it twice (under a schema
/// trained on 500,000 generated people such a pair's e-mail lost 24 bits, where the housemates'
/// table alone takes 7 and the namesakes' 17).
#[tokio::test]
async fn an_attribute_weighed_within_two_groups_counts_once() {
    let registry = |household_mailboxes: bool| {
        let mut text = with_namesake_mailboxes(&household_text(true, 24.0));
        if !household_mailboxes {
            let table = "email = [0.000170271, 0.000170271], ";
            assert!(text.contains(table), "the household table's e-mail entry moved");
            text = text.replacen(table, "", 1);
        }
        Arc::new(SchemaRegistry::from_texts([("customer.toml".to_owned(), text)]).expect("valid schema"))
    };
    let belinda =
        person("Belinda", "Lawrence", "1972-12-30", "belinda.lawrence79@yahoo.example", "Lan Crescent", "2857");
    let other_provider =
        person("Belinda", "Lawrence", "1972-12-30", "belinda.lawrence79@outlook.example", "Lan Crescent", "2857");
    let both = against_with(registry(true), belinda.clone(), other_provider.clone()).await;
    let namesakes_only = against_with(registry(false), belinda, other_provider).await;
    assert_eq!(level(&both, "email"), "same_mailbox", "{both:?}");
    for group in ["group:address", "group:name"] {
        assert!(both.candidates[0].attributes.iter().any(|a| a.attribute == group && a.level == "within"), "{both:?}");
    }
    // Among namesakes a shared mailbox name says less than among housemates: that table decides,
    // and the housemates' table adds nothing more.
    assert!(
        (both.candidates[0].score - namesakes_only.candidates[0].score).abs() < 0.01,
        "{both:?}\n{namesakes_only:?}"
    );
    assert!(matches!(both.decision, MatchDecision::Link { .. }), "{both:?}");
    let sum: f64 = both.candidates[0].attributes.iter().map(|a| a.weight).sum();
    assert!((sum - both.candidates[0].score).abs() < 0.01, "the lines add up to the score: {both:?}");
}

/// A record without a given name that links to each of two twins (the link threshold lowered so
/// that family name, birth date and address alone reach it) joins the closer one and merges
/// nothing: the twins disagree on the one attribute it lacks.
#[tokio::test]
async fn a_record_lacking_the_attribute_two_golden_records_disagree_on_merges_neither() {
    let registry = household_schema_linking_at(true, 20.0);
    let hub = Hub::new(registry, MemoryStore::new());
    let mut beverly = person("Beverly", "Ulkengar", "1996-08-17", "", "Brookros Road", "2708");
    beverly["phone"] = json!("+61412643225");
    let olivia = person("Olivia", "Ulkengar", "1996-08-17", "olivia.ulkengar@example.com", "Brookros Road", "2708");
    let a = feed(&hub, customer("crm", "c-1", 1, beverly)).await.1.expect("a").outcome.golden_id().to_owned();
    let b = feed(&hub, customer("crm", "c-2", 1, olivia)).await.1.expect("b").outcome.golden_id().to_owned();
    assert_ne!(a, b, "twins are two golden records");
    let mut nameless = person("", "Ulkengar", "1996-08-17", "", "Brookros Road", "2708");
    nameless.as_object_mut().expect("object").remove("given_name");
    nameless["phone"] = json!("+61412643225");
    let record = validate(hub.registry(), &customer("web", "w-1", 1, nameless), hub.now_ms()).expect("valid");
    let r = hub.match_record(&record).await.expect("match");
    let linked = r.candidates.iter().filter(|c| c.band == Band::Link).count();
    assert_eq!(linked, 2, "it scores as a link against both: {r:?}");
    assert_eq!(r.decision, MatchDecision::Link { golden_ids: vec![a] }, "the closer one only");
}

/// The built-in customer schema with `subsets` on its address group, as `mdm train` writes them
/// where a town's name, postcode and state go together.
fn town_schema() -> Arc<SchemaRegistry> {
    let text = mdm_core::schema::built_in_text("customer").expect("built-in customer schema");
    let cap = &text[text.find("max_weight = ").expect("the address group's cap")..];
    let cap = &cap[..cap.find(',').expect("a comma after it")];
    let group = format!(
        "{cap}, min_weight = -6.0, subsets = {{ \"locality+postcode\" = 9.0, \"locality+postcode+region\" = 9.2 }} }}"
    );
    let text = with_address_group(text, &group);
    assert!(text.contains(&group), "the built-in address group line moved");
    Arc::new(SchemaRegistry::from_texts([("customer.toml".to_owned(), text)]).expect("valid schema"))
}

/// Two people of one name in one town, on other streets: the town's name, postcode and state
/// agree as one piece of evidence (the subset's cap), not three; agreeing on the street as well
/// adds the street's own weights to that cap.
#[tokio::test]
async fn a_town_agreed_on_counts_once() {
    let weight = |r: &MatchResult, names: &[&str]| -> f64 {
        r.candidates[0].attributes.iter().filter(|a| names.contains(&a.attribute.as_str())).map(|a| a.weight).sum()
    };
    let town = ["locality", "postcode", "region"];
    let lena = person("Lena", "Marsh", "1991-05-17", "", "Ferrier Street", "2611");
    let mut other = person("Lena", "Marsh", "1964-02-03", "", "Kinpen Court", "2611");
    other["street_number"] = json!("180");
    let independent = against(lena.clone(), other.clone()).await;
    let joint = against_with(town_schema(), lena.clone(), other).await;
    let summed = weight(&independent, &town);
    assert!(summed > 15.0, "three agreements summed: {independent:?}");
    let line = joint.candidates[0].attributes.iter().find(|a| a.attribute == "group:address").expect("group line");
    assert_eq!(line.level, "capped");
    assert!((weight(&joint, &town) + line.weight - 9.2).abs() < 0.01, "the town counts its cap: {joint:?}");
    assert!((independent.candidates[0].score - joint.candidates[0].score - (summed - 9.2)).abs() < 0.01);
    let sum: f64 = joint.candidates[0].attributes.iter().map(|a| a.weight).sum();
    assert!((sum - joint.candidates[0].score).abs() < 0.01, "the lines add up to the score: {joint:?}");
    // The same street too: its number and name add their weights to the town's cap.
    let same =
        against_with(town_schema(), lena.clone(), person("Lena", "Marsh", "1991-05-17", "", "Ferrier St", "2611"))
            .await;
    let street = weight(&same, &["street_number", "address_line1"]);
    let address = weight(&same, &["street_number", "address_line1", "locality", "postcode", "region", "group:address"]);
    assert!(street > 10.0 && (address - (street + 9.2)).abs() < 0.01, "{same:?}");
}

#[tokio::test]
async fn a_weak_key_is_skipped_once_its_block_is_full() {
    let hub = hub();
    let names = ["Ava", "Ben", "Cleo", "Dov", "Eli", "Fay", "Gus", "Hal", "Ida", "Jon", "Kai", "Lea"];
    let families = ["Abe", "Bott", "Cray", "Dunn", "Eke", "Fitz", "Gale", "Hume", "Ivy", "Jory", "Kemp", "Lutz"];
    let with_date = |i: usize| {
        json!({"given_name": names[i], "family_name": families[i], "date_of_birth": "1970-01-01",
               "postcode": format!("{}", 2000 + i * 37)})
    };
    let probe = |hub: &mdm_core::hub::Hub<mdm_core::store::memory::MemoryStore>| {
        validate(hub.registry(), &customer("web", "probe", 1, with_date(11)), hub.now_ms()).expect("valid")
    };
    feed(&hub, customer("crm", "c-0", 1, with_date(0))).await;
    let r = hub.match_record(&probe(&hub)).await.expect("match");
    assert_eq!(r.blocking.candidates, 1, "one person has the birth date: a candidate");
    feed(&hub, customer("crm", "c-1", 1, with_date(1))).await;
    let r = hub.match_record(&probe(&hub)).await.expect("match");
    assert!(r.blocking.too_common.iter().any(|k| k == "date_of_birth.value"), "{:?}", r.blocking);
    assert_eq!(r.blocking.candidates, 0, "past its limit of 1 the birth date alone finds nobody");
}
