/// The models the mock knows: every id and alias of the price table in the reference (§7), with
/// the capabilities and context sizes of the official model cards. The mock accepts these ids
/// (and any `ft:` id) and answers 400 `invalid_model` for anything else, like the real API.
struct ModelSpec: Sendable {
    struct Capabilities: OptionSet, Sendable {
        let rawValue: Int
        static let completionChat = Capabilities(rawValue: 1 << 0)
        static let functionCalling = Capabilities(rawValue: 1 << 1)
        static let reasoning = Capabilities(rawValue: 1 << 2)
        static let completionFIM = Capabilities(rawValue: 1 << 3)
        static let fineTuning = Capabilities(rawValue: 1 << 4)
        static let vision = Capabilities(rawValue: 1 << 5)
        static let ocr = Capabilities(rawValue: 1 << 6)
        static let classification = Capabilities(rawValue: 1 << 7)
        static let moderation = Capabilities(rawValue: 1 << 8)
        static let audio = Capabilities(rawValue: 1 << 9)
        static let audioTranscription = Capabilities(rawValue: 1 << 10)
        static let audioTranscriptionRealtime = Capabilities(rawValue: 1 << 11)
        static let audioSpeech = Capabilities(rawValue: 1 << 12)

        static let chat: Capabilities = [.completionChat, .functionCalling]
        /// Card keys in the order `/v1/models` lists them.
        static let cardKeys: [(String, Capabilities)] = [
            ("completion_chat", .completionChat), ("function_calling", .functionCalling), ("reasoning", .reasoning),
            ("completion_fim", .completionFIM), ("fine_tuning", .fineTuning), ("vision", .vision), ("ocr", .ocr),
            ("classification", .classification), ("moderation", .moderation), ("audio", .audio),
            ("audio_transcription", .audioTranscription), ("audio_transcription_realtime", .audioTranscriptionRealtime),
            ("audio_speech", .audioSpeech), ("unified_resources", []),
        ]
    }

    let id: String
    let aliases: [String]
    let capabilities: Capabilities
    let contextLength: Int
    let description: String
    /// ISO date-time of retirement, only where the reference gives a date (others stay null rather than invented).
    let deprecation: String?
    let replacement: String?
    let defaultTemperature: Double?

    var names: [String] { [id] + aliases }
}

enum ModelCatalog {
    private static let k128 = 131_072
    private static let k256 = 262_144

    static let models: [ModelSpec] = [
        .init(id: "mistral-large-2512", aliases: ["mistral-large-latest"], capabilities: [.chat, .vision], contextLength: k256,
              description: "Mistral Large 3, our flagship general-purpose model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "mistral-medium-3-5", aliases: ["mistral-medium-latest", "mistral-medium-3"], capabilities: [.chat, .vision], contextLength: k256,
              description: "Mistral Medium 3.5, frontier-class multimodal model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "mistral-small-2603", aliases: ["mistral-small-latest"], capabilities: [.chat, .vision, .reasoning], contextLength: k256,
              description: "Mistral Small 4, efficient hybrid reasoning model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "codestral-2508", aliases: ["codestral-latest"], capabilities: [.chat, .completionFIM], contextLength: k128,
              description: "Codestral, our cutting-edge code model, for fill-in-the-middle and code generation.", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
        .init(id: "open-mistral-nemo-2407", aliases: ["open-mistral-nemo"], capabilities: [.chat, .fineTuning], contextLength: k128,
              description: "Mistral Nemo, 12B model built with NVIDIA.", deprecation: "2026-05-22T00:00:00Z", replacement: nil, defaultTemperature: 0.3),
        .init(id: "ministral-8b-2512", aliases: ["ministral-8b-latest"], capabilities: [.chat, .vision], contextLength: k256,
              description: "Ministral 3 8B, edge model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "ministral-3b-2512", aliases: ["ministral-3b-latest"], capabilities: [.chat, .vision], contextLength: k256,
              description: "Ministral 3 3B, smallest edge model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "ministral-14b-2512", aliases: ["ministral-14b-latest"], capabilities: [.chat, .vision], contextLength: k256,
              description: "Ministral 3 14B, edge model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "pixtral-large-2411", aliases: ["pixtral-large-latest"], capabilities: [.chat, .vision], contextLength: k128,
              description: "Pixtral Large, multimodal model.", deprecation: "2026-02-27T00:00:00Z", replacement: nil, defaultTemperature: 0.7),
        .init(id: "magistral-medium-2509", aliases: ["magistral-medium-latest"], capabilities: [.chat, .vision, .reasoning], contextLength: k128,
              description: "Magistral Medium, reasoning model.", deprecation: "2026-05-22T00:00:00Z", replacement: nil, defaultTemperature: 0.7),
        .init(id: "magistral-small-2509", aliases: ["magistral-small-latest"], capabilities: [.chat, .vision, .reasoning], contextLength: k128,
              description: "Magistral Small, reasoning model.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "devstral-2512", aliases: ["devstral-latest", "devstral-medium-latest"], capabilities: [.chat], contextLength: k256,
              description: "Devstral 2, agentic coding model.", deprecation: "2026-05-22T00:00:00Z", replacement: nil, defaultTemperature: 0.2),
        .init(id: "labs-devstral-small-2512", aliases: ["devstral-small-latest"], capabilities: [.chat], contextLength: k256,
              description: "Devstral Small 2, agentic coding model.", deprecation: nil, replacement: nil, defaultTemperature: 0.2),
        .init(id: "mistral-embed-2312", aliases: ["mistral-embed"], capabilities: [], contextLength: 8_192,
              description: "Mistral Embed, text embedding model (1024 dimensions).", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "codestral-embed-2505", aliases: ["codestral-embed"], capabilities: [], contextLength: 8_192,
              description: "Codestral Embed, code embedding model (1536 dimensions by default).", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "mistral-moderation-2603", aliases: [], capabilities: [.moderation, .classification], contextLength: k128,
              description: "Mistral Moderation, content moderation classifier.", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "mistral-moderation-2411", aliases: [], capabilities: [.moderation, .classification], contextLength: 8_192,
              description: "Mistral Moderation (2411).", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "voxtral-small-2507", aliases: ["voxtral-small-latest"], capabilities: [.chat, .audio], contextLength: 32_768,
              description: "Voxtral Small, audio understanding model.", deprecation: nil, replacement: nil, defaultTemperature: 0.2),
        .init(id: "voxtral-mini-2602", aliases: ["voxtral-mini-latest"], capabilities: [.audioTranscription, .audioTranscriptionRealtime], contextLength: 32_768,
              description: "Voxtral Mini Transcribe.", deprecation: nil, replacement: nil, defaultTemperature: 0.0),
        .init(id: "mistral-ocr-4-1", aliases: ["mistral-ocr-latest"], capabilities: [.ocr], contextLength: 32_768,
              description: "Mistral OCR 4.1, document understanding.", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "mistral-ocr-4-0", aliases: [], capabilities: [.ocr], contextLength: 32_768,
              description: "Mistral OCR 4.0.", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "mistral-ocr-2512", aliases: [], capabilities: [.ocr], contextLength: 32_768,
              description: "Mistral OCR 3.", deprecation: nil, replacement: nil, defaultTemperature: nil),
        .init(id: "voxtral-mini-tts-latest", aliases: [], capabilities: [.audioSpeech], contextLength: 32_768,
              description: "Voxtral Mini TTS, text to speech.", deprecation: nil, replacement: nil, defaultTemperature: nil),
        // Pinned ids of earlier generations, still seen in 2025 traffic (reference §7, second table).
        .init(id: "mistral-large-2411", aliases: [], capabilities: [.chat], contextLength: k128,
              description: "Mistral Large 2.1.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "mistral-medium-2505", aliases: [], capabilities: [.chat, .vision], contextLength: k128,
              description: "Mistral Medium 3.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "mistral-medium-2508", aliases: [], capabilities: [.chat, .vision], contextLength: k128,
              description: "Mistral Medium 3.1.", deprecation: nil, replacement: nil, defaultTemperature: 0.7),
        .init(id: "mistral-small-2503", aliases: [], capabilities: [.chat, .vision], contextLength: k128,
              description: "Mistral Small 3.1.", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
        .init(id: "mistral-small-2506", aliases: [], capabilities: [.chat, .vision], contextLength: k128,
              description: "Mistral Small 3.2.", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
        .init(id: "ministral-8b-2410", aliases: [], capabilities: [.chat], contextLength: k128,
              description: "Ministral 8B (2410).", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
        .init(id: "ministral-3b-2410", aliases: [], capabilities: [.chat], contextLength: k128,
              description: "Ministral 3B (2410).", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
        .init(id: "pixtral-12b-2409", aliases: [], capabilities: [.chat, .vision], contextLength: k128,
              description: "Pixtral 12B.", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
        .init(id: "codestral-2501", aliases: [], capabilities: [.chat, .completionFIM], contextLength: 262_144,
              description: "Codestral (2501).", deprecation: nil, replacement: nil, defaultTemperature: 0.3),
    ]

    private static let byName: [String: ModelSpec] = {
        var index: [String: ModelSpec] = [:]
        for model in models {
            for name in model.names { index[name] = model }
        }
        return index
    }()

    /// Every id and alias, each of which `/v1/models` lists as its own card (as the live API does).
    static let allNames: [String] = models.flatMap(\.names)

    static func spec(named name: String) -> ModelSpec? { byName[name] }

    static func isKnown(_ name: String) -> Bool { byName[name] != nil || name.hasPrefix("ft:") }
}
