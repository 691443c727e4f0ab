/// Splits a SQL script into statements.
///
/// PostgresNIO sends every query with the extended protocol, which accepts one statement at a time,
/// so migration files are split here. Semicolons inside quotes, quoted identifiers, dollar-quoted
/// bodies (`$$ … $$`, `$tag$ … $tag$`) and comments do not end a statement.
enum SQLScript {
    static func statements(in script: String) -> [String] {
        let chars = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0

        func flush() {
            let text = String(current).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty, !isOnlyComments(text) { statements.append(text) }
            current = String.UnicodeScalarView()
        }

        while index < chars.count {
            let char = chars[index]
            let next: Unicode.Scalar? = index + 1 < chars.count ? chars[index + 1] : nil
            switch char {
            case "-" where next == "-":
                while index < chars.count, chars[index] != "\n" { current.append(chars[index]); index += 1 }
                continue
            case "/" where next == "*":
                var depth = 0
                repeat {
                    if chars[index] == "/", index + 1 < chars.count, chars[index + 1] == "*" {
                        depth += 1; current.append(chars[index]); index += 1
                    } else if chars[index] == "*", index + 1 < chars.count, chars[index + 1] == "/" {
                        depth -= 1; current.append(chars[index]); index += 1
                    }
                    current.append(chars[index]); index += 1
                } while index < chars.count && depth > 0
                continue
            case "'", "\"":
                // E'…' strings treat backslash as an escape character.
                let backslashEscapes = char == "'" && index > 0 && (chars[index - 1] == "E" || chars[index - 1] == "e")
                    && (index < 2 || !isIdentifierCharacter(chars[index - 2]))
                current.append(char); index += 1
                while index < chars.count {
                    current.append(chars[index])
                    if backslashEscapes, chars[index] == "\\", index + 1 < chars.count {
                        current.append(chars[index + 1]); index += 2; continue
                    }
                    if chars[index] == char {
                        // A doubled quote is an escaped quote, not the end.
                        if index + 1 < chars.count, chars[index + 1] == char {
                            current.append(chars[index + 1]); index += 2; continue
                        }
                        index += 1; break
                    }
                    index += 1
                }
                continue
            case "$":
                // `a$b$c` is an identifier, not the start of a dollar-quoted string.
                if index == 0 || !isIdentifierCharacter(chars[index - 1]), let tag = dollarTag(chars, at: index) {
                    current.append(contentsOf: tag); index += tag.count
                    while index < chars.count {
                        if chars[index] == "$", matches(chars, at: index, tag) {
                            current.append(contentsOf: tag); index += tag.count; break
                        }
                        current.append(chars[index]); index += 1
                    }
                    continue
                }
            case ";":
                flush(); index += 1
                continue
            default:
                break
            }
            current.append(char); index += 1
        }
        flush()
        return statements
    }

    /// `$$` or `$name$` starting at `index`, if there is one (not a positional parameter like `$1`).
    private static func dollarTag(_ chars: [Unicode.Scalar], at index: Int) -> [Unicode.Scalar]? {
        var end = index + 1
        while end < chars.count, chars[end] == "_" || chars[end].properties.isAlphabetic
            || (end > index + 1 && ("0"..."9").contains(chars[end])) {
            end += 1
        }
        guard end < chars.count, chars[end] == "$" else { return nil }
        return Array(chars[index...end])
    }

    private static func isIdentifierCharacter(_ char: Unicode.Scalar) -> Bool {
        char == "_" || char == "$" || char.properties.isAlphabetic || ("0"..."9").contains(char)
    }

    private static func matches(_ chars: [Unicode.Scalar], at index: Int, _ tag: [Unicode.Scalar]) -> Bool {
        index + tag.count <= chars.count && Array(chars[index..<(index + tag.count)]) == tag
    }

    private static func isOnlyComments(_ text: String) -> Bool {
        text.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
    }
}

import Foundation
