import Testing
@testable import MockMistral

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try JSONDocument(bytes: Array(text.utf8)).root
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try parse(#"{"a":"x\"y\\z\/\n\t\u00e9\ud83d\ude00"}"#)
        #expect(value["a"]?.string == "x\"y\\z/\n\té😀")
    }

    @Test func keepsMemberOrderAndRawRanges() throws {
        let text = #"{ "b" : [1, 2.5e1, -0, true, null], "a": {"k": "v"} }"#
        let document = try JSONDocument(bytes: Array(text.utf8))
        #expect(document.root.object?.members.map(\.key) == ["b", "a"])
        let b = try #require(document.root["b"])
        #expect(String(decoding: document.raw(b), as: UTF8.self) == "[1, 2.5e1, -0, true, null]")
        #expect(b.array?[1].number == 25)
        #expect(b.array?[0].integer == 1)
        #expect(b.array?[1].integer == 25)
        #expect(try parse("1.5").integer == nil)
    }

    @Test(arguments: [
        ("", "Expecting value", 0),
        ("{", "Expecting property name enclosed in double quotes", 1),
        (#"{"a" 1}"#, "Expecting ':' delimiter", 5),
        (#"{"a":1 "b":2}"#, "Expecting ',' delimiter", 7),
        ("[1,]", "Expecting value", 3),
        (#""abc"#, "Unterminated string starting at", 0),
        ("{} x", "Extra data", 3),
        ("nul", "Expecting value", 0),
        ("01", "Extra data", 1),
        ("\"a\u{01}\"", "Invalid control character at", 2),
    ])
    func errorsUsePythonWordingAndOffsets(text: String, message: String, offset: Int) {
        do {
            _ = try parse(text)
            Issue.record("parsed invalid JSON \(text)")
        } catch {
            #expect(error.message == message)
            #expect(error.offset == offset)
        }
    }

    @Test func writerEscapesWhatJSONRequires() {
        #expect(jsonEncodedString("a\"b\\c\n\u{01}é") == #""a\"b\\c\n\u0001é""#)
    }
}
