//! Tests of publisher input: JSON bodies byte for byte, text bodies, fields.

use proptest::prelude::*;

use super::*;

#[test]
fn json_string_data_is_taken_verbatim() {
    let p = from_json(br#"{"data":"a\nb"}"#).unwrap();
    assert_eq!(p.event.data(), "a\nb");
    assert_eq!(p.topic.as_str(), "default");
    assert_eq!(p.event.name(), None);
}

#[test]
fn json_errors_are_precise() {
    let cases: &[(&[u8], &str)] = &[
        (b"{", "not valid JSON"),
        (b"[1]", "must be an object"),
        (b"{}", "needs a \"data\""),
        (br#"{"data":"x","event":5}"#, "\"event\" must be a string"),
        (br#"{"data":"x","topics":"a"}"#, "unknown field"),
        (br#"{"data":"x","event":"a\rb"}"#, "CR, LF or NUL"),
        (br#"{"data":"a\u0000b"}"#, "NUL"),
        (br#"{"data":"x","topic":"a b"}"#, "topic must not hold"),
        (br#"{"data":"x","retry":-1}"#, "retry"),
        (br#"{"data":"x","data":"y"}"#, "duplicate field \"data\""),
    ];
    for (body, needle) in cases {
        let e = from_json(body).unwrap_err().to_string();
        assert!(
            e.contains(needle),
            "{:?} -> {e}",
            String::from_utf8_lossy(body)
        );
        assert!(!e.contains('\n'));
    }
}

/// The event data `body` gives, or the error message.
fn data(body: &str) -> Result<String, String> {
    from_json(body.as_bytes())
        .map(|p| p.event.data().to_owned())
        .map_err(|e| e.to_string())
}

/// Asserts `{"data":<text>}` sends `text` itself.
#[track_caller]
fn verbatim(text: &str) {
    assert_eq!(data(&format!(r#"{{"data":{text}}}"#)).as_deref(), Ok(text));
}

#[test]
fn non_string_data_is_the_publishers_exact_text() {
    // Big integers are not rounded, keys not sorted, nesting and spacing kept.
    verbatim("12345678901234567890123");
    verbatim(r#"{"b":1,"a":12345678901234567890123}"#);
    verbatim(r#"{"b":1,"a":2}"#);
    verbatim(r#"[[1,[2,[]]],{"a":[null,true,false]},[]]"#);
    verbatim(r#"{ "a" : [ 1 ,2 ] ,"b":{}}"#);
    verbatim("{\n  \"a\": 1,\n\t\"b\": [\n    true\n  ]\n}");
    verbatim("null");
    verbatim("true");
    verbatim("{}");
    // Escapes stay escapes; raw UTF-8 stays raw.
    verbatim(r#"{"s":"\u00e9"}"#);
    assert_eq!(r#"{"s":"\u00e9"}"#.len(), 14);
    verbatim(r#"{"s":"é \"q\" \\ \/ \n \ud83d\ude00"}"#);
    // A string data is decoded, escapes included.
    assert_eq!(
        data(r#"{"data":"\u00e9\ud83d\ude00"}"#).as_deref(),
        Ok("é😀")
    );
    assert_eq!(data(r#"{"data":"hi"}"#).as_deref(), Ok("hi"));
}

#[test]
fn numbers_are_sent_as_spelled_whatever_their_range() {
    for n in [
        "1.0", "-0", "-0.0", "0", "1e400", "-1e400", "1e-400", "1E+2", "2.50e-3",
    ] {
        verbatim(n);
        verbatim(&format!("[{n}]"));
    }
    // The grammar is still checked.
    for bad in ["01", "1.", ".5", "+1", "-", "1e", "NaN", "Infinity", "0x10"] {
        let e = data(&format!(r#"{{"data":{bad}}}"#)).unwrap_err();
        assert!(e.starts_with("body is not valid JSON"), "{bad}: {e}");
    }
    // retry is a number the hub reads: out of range is a retry error.
    for bad in ["1e400", "1.0", "-0.5", "4294967296", "\"5\""] {
        let e = data(&format!(r#"{{"data":"x","retry":{bad}}}"#)).unwrap_err();
        assert!(e.starts_with("retry must be"), "{bad}: {e}");
    }
    let p = from_json(br#"{"data":"x","retry":4294967295}"#).unwrap();
    assert_eq!(p.event.retry(), Some(u32::MAX));
    assert_eq!(
        from_json(br#"{"data":"x","retry":null}"#)
            .unwrap()
            .event
            .retry(),
        None
    );
}

#[test]
fn whitespace_around_the_value_is_not_part_of_it() {
    assert_eq!(
        data("{\"data\" :  \n\t[1, 2] \r\n , \"event\":\"e\"}").as_deref(),
        Ok("[1, 2]")
    );
    assert_eq!(
        data("  {\"data\":{\"a\":1}\n}\n").as_deref(),
        Ok(r#"{"a":1}"#)
    );
}

#[test]
fn cr_in_the_text_is_kept_and_goes_out_as_lf() {
    let lf = "{\n  \"a\": [\n    1\n  ]\n}";
    for text in [
        lf.to_owned(),
        lf.replace('\n', "\r\n"),
        lf.replace('\n', "\r"),
    ] {
        let p = from_json(format!(r#"{{"data":{text}}}"#).as_bytes()).unwrap();
        assert_eq!(p.event.data(), text);
        let frame = crate::sse::encode(&p.event, None);
        assert_eq!(
            frame.as_bytes(),
            b"data: {\ndata:   \"a\": [\ndata:     1\ndata:   ]\ndata: }\n\n"
        );
    }
}

#[test]
fn repeated_top_level_names_are_refused_nested_ones_kept() {
    for (body, name) in [
        (r#"{"data":1,"data":1}"#, "data"),
        (r#"{"data":"x","event":"a","event":"b"}"#, "event"),
        (r#"{"topic":null,"data":"x","topic":"b"}"#, "topic"),
        (r#"{"data":"x","retry":1,"retry":2}"#, "retry"),
        (r#"{"data":"x","d\u0061ta":"y"}"#, "data"),
    ] {
        assert_eq!(
            from_json(body.as_bytes()),
            Err(PublishError::DuplicateField(name)),
            "{body}"
        );
        let e = data(body).unwrap_err();
        assert!(
            e.starts_with(&format!("duplicate field \"{name}\" (")),
            "{e}"
        );
    }
    // The first problem in the body's order is the one named.
    assert_eq!(
        from_json(br#"{"data":1,"x":1,"data":2}"#),
        Err(PublishError::UnknownField("x".into()))
    );
    // The rest of the body must still be JSON.
    let e = data(r#"{"data":1,"data":2,"event":}"#).unwrap_err();
    assert!(e.starts_with("body is not valid JSON"), "{e}");
    // Inside data, names are the publisher's business.
    verbatim(r#"{"k":1,"k":2,"k":{"k":3,"k":3}}"#);
    verbatim(r#"[{"data":1,"data":2}]"#);
}

#[test]
fn data_text_is_checked_against_the_json_grammar() {
    for bad in [
        r#"{"data":{"a":}}"#,
        r#"{"data":[1,]}"#,
        r#"{"data":{"a" 1}}"#,
        r#"{"data":{a:1}}"#,
        "{\"data\":{\"a\":\"tab\tinside\"}}",
        r#"{"data":"bad \x escape"}"#,
        r#"{"data":{"s":"\u12"}}"#,
        r#"{"data":1} x"#,
        r#"{"data":1"#,
        r#"{"data":1,}"#,
        "",
        "   ",
    ] {
        let e = data(bad).unwrap_err();
        assert!(e.starts_with("body is not valid JSON"), "{bad:?}: {e}");
    }
    assert_eq!(
        from_json(b"\xff"),
        Err(PublishError::Json(
            serde_json::from_slice::<Value>(b"\xff")
                .unwrap_err()
                .to_string()
        ))
    );
    for not_object in [&b"[1]"[..], b" 1e400", b"\"x\"", b"null", b"[[[1]]]"] {
        assert_eq!(from_json(not_object), Err(PublishError::NotAnObject));
    }
    // Invalid UTF-8 anywhere is refused, inside data too.
    assert!(matches!(
        from_json(b"{\"data\":{\"s\":\"\xc3\x28\"}}"),
        Err(PublishError::Json(_))
    ));
}

#[test]
fn lone_surrogates_pass_in_json_text_and_are_refused_where_decoded() {
    verbatim(r#"{"s":"\ud800"}"#);
    verbatim(r#"["\udc00x"]"#);
    for body in [
        "{\"data\":\"a\\ud800\"}",
        "{\n  \"event\": \"e\",\n  \"data\": \"x\",  \"topic\": \"\\udc00\"\n}",
        "{\"data\":\"x\",\n\"event\":\"\\ud800\\u0041\"}",
        "{\"data\":1,\"\\ud800\":1}",
    ] {
        // The same message, position included, as a parse of the whole body gives.
        let want = serde_json::from_str::<Value>(body).unwrap_err().to_string();
        assert_eq!(
            data(body),
            Err(format!("body is not valid JSON: {want}")),
            "{body}"
        );
    }
}

#[test]
fn deep_nesting_in_data_is_sent_without_recursion() {
    let depth = 100_000;
    verbatim(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
    let e = data(&format!(
        r#"{{"data":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth - 1)
    ))
    .unwrap_err();
    assert!(e.starts_with("body is not valid JSON"), "{e}");
}

/// Any JSON value, with big and small numbers, escapes and non-ASCII text.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_json_value_round_trips_byte_exact(value in json_value()) {
        let compact = serde_json::to_string(&value).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        for text in [compact, pretty.clone(), pretty.replace('\n', "\r\n")] {
            for body in [format!(r#"{{"data":{text}}}"#), format!("{{ \"data\" :\n{text}\n}}")] {
                let got = from_json(body.as_bytes());
                match &value {
                    // NUL is refused in any data; a string data is sent decoded.
                    Value::String(s) if s.contains('\0') => {
                        prop_assert!(got.is_err());
                    }
                    Value::String(s) => {
                        let got = got.unwrap();
                        prop_assert_eq!(got.event.data(), s.as_str());
                    }
                    _ => {
                        let got = got.unwrap();
                        prop_assert_eq!(got.event.data(), text.as_str());
                        // On the wire, after a subscriber joins the data lines: the LF text.
                        let frame = crate::sse::encode(&got.event, None);
                        let wire = std::str::from_utf8(frame.as_bytes()).unwrap();
                        let joined: Vec<&str> = wire
                            .lines()
                            .filter_map(|l| l.strip_prefix("data: "))
                            .collect();
                        let lf = text.replace("\r\n", "\n").replace('\r', "\n");
                        prop_assert_eq!(joined.join("\n"), lf);
                    }
                }
            }
        }
    }
}

#[test]
fn text_body_with_query_fields() {
    let params = Params {
        event: Some("greet"),
        topics: vec!["t1"],
        retry: Some("100"),
        ..Params::default()
    };
    let p = from_text(b"hello", &params).unwrap();
    assert_eq!(p.event.data(), "hello");
    assert_eq!(p.event.name(), Some("greet"));
    assert_eq!(p.event.retry(), Some(100));
    assert_eq!(
        from_text(b"\xff", &Params::default()),
        Err(PublishError::NotUtf8)
    );
}

#[test]
fn private_is_a_boolean_field_or_a_query_flag() {
    let private = |body: &str| from_json(body.as_bytes()).map(|p| p.private);
    assert_eq!(private(r#"{"data":"x"}"#), Ok(false));
    assert_eq!(private(r#"{"data":"x","private":true}"#), Ok(true));
    assert_eq!(private(r#"{"private" : true ,"data":"x"}"#), Ok(true));
    assert_eq!(private(r#"{"data":"x","private":false}"#), Ok(false));
    assert_eq!(private(r#"{"data":"x","private":null}"#), Ok(false));
    for bad in ["1", "\"true\"", "[]", "0"] {
        let e = private(&format!(r#"{{"data":"x","private":{bad}}}"#)).unwrap_err();
        assert_eq!(e.to_string(), "\"private\" must be true or false", "{bad}");
    }
    assert_eq!(
        private(r#"{"data":"x","private":true,"private":false}"#),
        Err(PublishError::DuplicateField("private"))
    );
    let e = private(r#"{"data":"x","privat":true}"#).unwrap_err();
    assert!(e.to_string().contains("retry, private, id)"), "{e}");
    let text = |flag| {
        let params = Params {
            private: flag,
            ..Params::default()
        };
        from_text(b"x", &params).map(|p| p.private)
    };
    assert_eq!(text(None), Ok(false));
    assert_eq!(text(Some("1")), Ok(true));
    assert_eq!(text(Some("true")), Ok(true));
    assert_eq!(text(Some("0")), Ok(false));
    assert_eq!(text(Some("false")), Ok(false));
    assert_eq!(text(Some("yes")), Err(PublishError::Private));
    assert_eq!(
        PublishError::Private.to_string(),
        "private must be 1, 0, true or false"
    );
}

#[test]
fn topic_is_a_string_or_an_array_the_first_canonical() {
    let p = from_json(br#"{"data":"x","topic":["a","b","a"]}"#).unwrap();
    assert_eq!(p.topic.as_str(), "a");
    assert_eq!(p.alternates, [Topic::new("b").unwrap()]);
    let p = from_json(br#"{"data":"x","topic":"a"}"#).unwrap();
    assert!(p.alternates.is_empty());
    for bad in ["[]", "[1]", "[\"a\",null]", "{}", "3"] {
        let e = from_json(format!(r#"{{"data":"x","topic":{bad}}}"#).as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"topic\" must be a string or a non-empty array of strings",
            "{bad}"
        );
    }
    let e = from_json(br#"{"data":"x","topic":["a","b c"]}"#).unwrap_err();
    assert_eq!(e, PublishError::Topic(TopicError::InvalidChar));
    let many: Vec<String> = (0..=MAX_EVENT_TOPICS)
        .map(|i| format!("\"t{i}\""))
        .collect();
    let body = format!(r#"{{"data":"x","topic":[{}]}}"#, many.join(","));
    assert!(matches!(
        from_json(body.as_bytes()),
        Err(PublishError::Envelope(EnvelopeError::TooManyTopics))
    ));
}

#[test]
fn a_publisher_id_is_checked_text() {
    let p = from_json(br#"{"data":"x","id":"urn:uuid:1"}"#).unwrap();
    assert_eq!(p.id.unwrap().as_str(), "urn:uuid:1");
    for bad in [r#""a\nb""#, r#""""#, "1"] {
        let body = format!(r#"{{"data":"x","id":{bad}}}"#);
        assert!(from_json(body.as_bytes()).is_err(), "{bad}");
    }
    let params = Params {
        id: Some("a\rb"),
        ..Params::default()
    };
    assert!(from_text(b"x", &params).is_err());
}

#[test]
fn constant_time_eq_compares() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}
