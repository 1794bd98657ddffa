import Foundation
import TesseraEncoder
import TesseraTestSupport
import Testing

/// Loading failures name the file, field, tensor or byte offset.
@Suite("Model folder loading errors")
struct ModelLoadingErrorTests {
    @Test("a missing config.json or model.safetensors is named")
    func missingFiles() throws {
        let fixture = try TinyBertFixture.load()
        let directory = try fixture.writeModelFolder()
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        let noWeights = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(noWeights?.code == .missingFile)
        #expect(noWeights?.location.path == directory + "/model.safetensors")
        try FileManager.default.removeItem(atPath: directory + "/config.json")
        let noConfig = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(noConfig?.code == .missingFile)
        #expect(noConfig?.location.path == directory + "/config.json")
    }

    @Test("a missing tensor is named")
    func missingTensor() throws {
        let fixture = try TinyBertFixture.load()
        let name = "encoder.layer.1.attention.self.key.weight"
        let directory = try fixture.writeModelFolder(tensors: fixture.safetensors(skipping: [name]))
        let error = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(error?.code == .missingTensor)
        #expect(error?.location.field == name)
        #expect(error?.message.contains("bert.\(name)") == true)
    }

    @Test("a tensor of the wrong shape is named with both shapes")
    func wrongShape() throws {
        let fixture = try TinyBertFixture.load()
        let name = "encoder.layer.0.intermediate.dense.weight"
        let bad = SafetensorsWriter.Tensor(name: name, shape: [8, 16], values: fixture.tensors[name]!.values)
        let directory = try fixture.writeModelFolder(tensors: fixture.safetensors(overriding: [name: bad]))
        let error = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(error?.code == .tensorShape)
        #expect(error?.location.field == name)
        #expect(error?.message.contains("[8, 16]") == true)
        #expect(error?.message.contains("[16, 8]") == true)
    }

    @Test("an integer weight tensor is refused as an unsupported data type")
    func unsupportedDataType() throws {
        let fixture = try TinyBertFixture.load()
        let name = "embeddings.LayerNorm.bias"
        let tensor = fixture.tensors[name]!
        let integer = SafetensorsWriter.Tensor(name: name, shape: tensor.shape, values: tensor.values, dataType: .int64)
        let directory = try fixture.writeModelFolder(tensors: fixture.safetensors(overriding: [name: integer]))
        let error = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(error?.code == .unsupportedDataType)
        #expect(error?.location.field == name)
        #expect(error?.message.contains("I64") == true)
    }

    @Test("an activation other than exact gelu is refused, naming hidden_act")
    func unsupportedActivation() throws {
        let fixture = try TinyBertFixture.load()
        for activation in ["gelu_new", "relu", "gelu_pytorch_tanh"] {
            let directory = try fixture.writeModelFolder(configEdits: ["hidden_act": activation])
            let error = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
            #expect(error?.code == .unsupportedConfiguration)
            #expect(error?.location.field == "hidden_act")
            #expect(error?.message.contains(activation) == true)
        }
    }

    @Test("a config.json field that is missing or mistyped is named")
    func configFields() throws {
        let fixture = try TinyBertFixture.load()
        let directory = try fixture.writeModelFolder()
        var config = fixture.configObject
        config["hidden_size"] = nil
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let missing = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(missing?.code == .malformedFile)
        #expect(missing?.location.field == "hidden_size")
        let mistyped = #expect(throws: EncoderError.self) {
            try BertModel(modelDirectory: try fixture.writeModelFolder(configEdits: ["num_hidden_layers": "two"]))
        }
        #expect(mistyped?.code == .malformedFile)
        #expect(mistyped?.location.field == "num_hidden_layers")
        let heads = #expect(throws: EncoderError.self) {
            try BertModel(modelDirectory: try fixture.writeModelFolder(configEdits: ["num_attention_heads": 3]))
        }
        #expect(heads?.code == .unsupportedConfiguration)
        #expect(heads?.location.field == "num_attention_heads")
    }

    @Test("a truncated or corrupt safetensors file names the file and byte offset")
    func corruptFile() throws {
        let fixture = try TinyBertFixture.load()
        let directory = try fixture.writeModelFolder()
        let path = directory + "/model.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerByteCount = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16

        try bytes.prefix(5).write(to: URL(fileURLWithPath: path))
        let tiny = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(tiny?.code == .malformedFile)
        #expect(tiny?.location.path == path)
        #expect(tiny?.location.offset == 0)

        try bytes.prefix(8 + headerByteCount / 2).write(to: URL(fileURLWithPath: path))
        let cutHeader = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(cutHeader?.code == .malformedFile)
        #expect(cutHeader?.location.offset == 0)

        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: path))
        let cutData = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(cutData?.code == .malformedFile)
        #expect(cutData?.location.offset == bytes.count - 10)
        #expect(cutData?.location.field != nil)

        var garbled = bytes
        garbled[8] = UInt8(ascii: "[")
        try garbled.write(to: URL(fileURLWithPath: path))
        let badJSON = #expect(throws: EncoderError.self) { try BertModel(modelDirectory: directory) }
        #expect(badJSON?.code == .malformedFile)
        #expect(badJSON?.location.offset == 8)
    }
}
