import Foundation

extension BertTokenizer {
    /// Loads the tokenizer of a Hugging Face model folder.
    ///
    /// `tokenizer.json` is read when present (vocabulary, WordPiece and BertNormalizer options, added tokens);
    /// otherwise `vocab.txt` (one token per line, id = line number) with the options of
    /// `tokenizer_config.json` (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`) when it exists.
    /// - Parameter modelDirectory: the model folder.
    /// - Throws: `EncoderError` naming the missing file, or the file and field that cannot be read.
    public init(modelDirectory: String) throws(EncoderError) {
        let folder = URL(fileURLWithPath: modelDirectory)
        let tokenizerJSON = folder.appendingPathComponent("tokenizer.json").path
        if FileManager.default.fileExists(atPath: tokenizerJSON) {
            try self.init(tokenizerJSONAt: tokenizerJSON)
            return
        }
        let vocabPath = folder.appendingPathComponent("vocab.txt").path
        guard let data = FileManager.default.contents(atPath: vocabPath) else {
            throw EncoderError(
                .missingFile,
                "the model folder has neither tokenizer.json nor vocab.txt",
                location: .init(path: vocabPath)
            )
        }
        var vocabulary = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        if vocabulary.last == "" { vocabulary.removeLast() }
        vocabulary = vocabulary.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
        var options = Options()
        let configPath = folder.appendingPathComponent("tokenizer_config.json").path
        if let configData = FileManager.default.contents(atPath: configPath) {
            guard let config = (try? JSONSerialization.jsonObject(with: configData)) as? [String: Any] else {
                throw EncoderError(.malformedFile, "not a JSON object", location: .init(path: configPath))
            }
            options.lowercase = config["do_lower_case"] as? Bool ?? true
            options.stripAccents = config["strip_accents"] as? Bool
            options.handleChineseCharacters = config["tokenize_chinese_chars"] as? Bool ?? true
            if let unknown = config["unk_token"] as? String { options.unknownToken = unknown }
        }
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        let added = vocabulary.enumerated().filter { specials.contains($0.element) }.map {
            ($0.element, Int32($0.offset))
        }
        try self.init(vocabulary: vocabulary, options: options, addedTokens: added, path: vocabPath)
    }

    private init(tokenizerJSONAt path: String) throws(EncoderError) {
        func malformed(_ field: String, _ message: String) -> EncoderError {
            EncoderError(.malformedFile, message, location: .init(path: path, field: field))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EncoderError(.missingFile, "cannot read the file", location: .init(path: path))
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw malformed("", "not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw malformed("model", "missing") }
        if let type = model["type"] as? String, type != "WordPiece" {
            throw EncoderError(
                .unsupportedConfiguration,
                "the tokenizer model is \(type); only WordPiece is supported",
                location: .init(path: path, field: "model.type")
            )
        }
        guard let vocab = model["vocab"] as? [String: Any] else { throw malformed("model.vocab", "missing") }
        var vocabulary = [String](repeating: "", count: vocab.count)
        for (token, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0, id < vocab.count else {
                throw malformed("model.vocab.\(token)", "ids must be 0..<\(vocab.count)")
            }
            vocabulary[id] = token
        }
        var options = Options()
        options.unknownToken = model["unk_token"] as? String ?? "[UNK]"
        options.continuingSubwordPrefix = model["continuing_subword_prefix"] as? String ?? "##"
        options.maxInputCharactersPerWord = (model["max_input_chars_per_word"] as? NSNumber)?.intValue ?? 100
        var normalizers: [[String: Any]] = []
        if let normalizer = root["normalizer"] as? [String: Any] {
            if normalizer["type"] as? String == "Sequence" {
                normalizers = normalizer["normalizers"] as? [[String: Any]] ?? []
            } else {
                normalizers = [normalizer]
            }
        }
        options.lowercase = false
        options.cleanText = false
        options.handleChineseCharacters = false
        options.stripAccents = false
        for normalizer in normalizers {
            let type = normalizer["type"] as? String ?? ""
            switch type {
            case "BertNormalizer":
                options.lowercase = normalizer["lowercase"] as? Bool ?? true
                options.cleanText = normalizer["clean_text"] as? Bool ?? true
                options.handleChineseCharacters = normalizer["handle_chinese_chars"] as? Bool ?? true
                options.stripAccents = normalizer["strip_accents"] as? Bool
            case "Lowercase": options.lowercase = true
            case "StripAccents": options.stripAccents = true
            case "NFD": break
            default:
                throw EncoderError(
                    .unsupportedConfiguration,
                    "normalizer '\(type)' is not supported",
                    location: .init(path: path, field: "normalizer.type")
                )
            }
        }
        var added: [(String, Int32)] = []
        for entry in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = entry["content"] as? String, let id = (entry["id"] as? NSNumber)?.int32Value else {
                throw malformed("added_tokens", "each entry needs content and id")
            }
            added.append((content, id))
            if Int(id) < vocabulary.count, vocabulary[Int(id)].isEmpty { vocabulary[Int(id)] = content }
        }
        try self.init(vocabulary: vocabulary, options: options, addedTokens: added, path: path)
    }
}
