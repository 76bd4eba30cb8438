//! The published JSON Schemas agree with the parsers they describe.

use leadwire_webhooks::templates::TemplateDefinition;

#[test]
fn the_template_schema_lists_exactly_the_fields_the_parser_reads() {
    let mut schema = leadwire_config::schema::template_fields();
    let mut parser: Vec<String> = TemplateDefinition::FIELDS
        .iter()
        .map(|f| f.to_string())
        .collect();
    schema.sort();
    parser.sort();
    assert_eq!(schema, parser);
}
