import TesseraEncoder
import TesseraTestSupport
import Testing

/// The forward pass on the hand-made tiny model, against the numpy reference's output.
@Suite("BERT forward on the tiny model")
struct ModelForwardTests {
    /// float32 products of 8- and 16-wide rows differ from numpy's (partly float64) arithmetic by about 1e-6.
    static let tolerance: Float = 1e-5

    @Test("padded batch in mixed order matches the reference", arguments: [1, 2])
    func paddedBatch(threadCount: Int) throws {
        let fixture = try TinyBertFixture.load()
        let directory = try fixture.writeModelFolder()
        let model = try BertModel(modelDirectory: directory, threadCount: threadCount)
        let outputs = try model.forward(fixture.batch)
        #expect(outputs.count == fixture.batch.count)
        for (index, output) in outputs.enumerated() {
            #expect(output.count == fixture.batch[index].count * 8)
            #expect(maxAbsoluteDifference(output, fixture.lastHiddenState[index]) <= Self.tolerance)
        }
    }

    @Test("each sequence alone gives the same vectors as in the batch")
    func batchIndependence() throws {
        let fixture = try TinyBertFixture.load()
        let model = try BertModel(modelDirectory: try fixture.writeModelFolder())
        let batched = try model.forward(fixture.batch)
        for (index, sequence) in fixture.batch.enumerated() {
            let alone = try model.forward([sequence])[0]
            #expect(maxAbsoluteDifference(alone, batched[index]) <= Self.tolerance)
        }
    }

    @Test(
        "F16 and BF16 checkpoints, with and without a bert. prefix",
        arguments: [SafetensorsWriter.DataType.float16, .bfloat16, .float32],
        ["", "bert."]
    )
    func dataTypesAndPrefix(dataType: SafetensorsWriter.DataType, prefix: String) throws {
        let fixture = try TinyBertFixture.load()
        let directory = try fixture.writeModelFolder(
            tensors: fixture.safetensors(dataType: dataType, prefix: prefix)
        )
        let model = try BertModel(modelDirectory: directory)
        let outputs = try model.forward(fixture.batch)
        for (index, output) in outputs.enumerated() {
            #expect(maxAbsoluteDifference(output, fixture.lastHiddenState[index]) <= Self.tolerance)
        }
    }

    @Test("configuration is read from config.json")
    func configuration() throws {
        let fixture = try TinyBertFixture.load()
        let model = try BertModel(modelDirectory: try fixture.writeModelFolder())
        let configuration = model.configuration
        #expect(configuration.layerCount == 2)
        #expect(configuration.hiddenDimension == 8)
        #expect(configuration.headCount == 2)
        #expect(configuration.headDimension == 4)
        #expect(configuration.intermediateDimension == 16)
        #expect(configuration.maxPositionCount == 40)
        #expect(configuration.typeVocabularySize == 2)
        #expect(configuration.vocabularySize == fixture.vocabulary.count)
        #expect(configuration.layerNormEpsilon == 1e-12)
    }

    @Test("an empty batch gives no output; bad sequences are refused with their index")
    func badSequences() throws {
        let fixture = try TinyBertFixture.load()
        let model = try BertModel(modelDirectory: try fixture.writeModelFolder())
        #expect(try model.forward([]).isEmpty)
        let empty = #expect(throws: EncoderError.self) { try model.forward([[4, 5], []]) }
        #expect(empty?.code == .invalidArgument)
        #expect(empty?.location.offset == 1)
        let outside = #expect(throws: EncoderError.self) { try model.forward([[4, 99]]) }
        #expect(outside?.code == .invalidArgument)
        let tooLong = #expect(throws: EncoderError.self) {
            try model.forward([[Int32](repeating: 7, count: 41)])
        }
        #expect(tooLong?.code == .invalidArgument)
    }
}
