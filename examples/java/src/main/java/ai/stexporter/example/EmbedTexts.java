package ai.stexporter.example;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.extensions.OrtxPackage;

import java.util.Arrays;
import java.util.Map;

/**
 * Embeds texts with st-exporter's {@code onnx/model.onnx} (input "text": string [N], output
 * "sentence_embedding": float32 [N, D]) through ONNX Runtime Java and prints one row per text.
 *
 * <pre>
 * mvn -q compile exec:java -Dexec.args="path/to/OUT/onnx/model.onnx 'Hello world' 'Grüß Gott'"
 * </pre>
 *
 * {@code -Dortx.library=/path/libortextensions.so} registers that extensions library instead of the
 * one in the onnxruntime-extensions jar.
 */
public final class EmbedTexts {

    private EmbedTexts() {
    }

    /**
     * Refuses texts that JNI's "modified UTF-8" would encode differently from UTF-8.
     *
     * <p>ONNX Runtime Java hands each String to the native library with JNI's GetStringUTFChars (in
     * the ONNX Runtime sources we read), which writes U+0000 as C0 80 and a character above U+FFFF
     * (emoji, CJK extension B) as two 3-byte surrogates. The tokenizer in the graph reads UTF-8, so
     * such a text would get a different embedding without any error; st-exporter measured cosines
     * down to 0.973 on its corpus. Set -Dst.allowNonBmp=true only after checking that your ONNX
     * Runtime Java version passes standard UTF-8.
     */
    static void requireUtf8Safe(String[] texts) {
        if (Boolean.getBoolean("st.allowNonBmp")) {
            return;
        }
        for (int i = 0; i < texts.length; i++) {
            int bad = texts[i].codePoints().filter(cp -> cp == 0 || cp > 0xFFFF).findFirst().orElse(-1);
            if (bad >= 0) {
                throw new IllegalArgumentException(String.format(
                    "text %d contains U+%04X, which ONNX Runtime Java passes as modified UTF-8, not UTF-8: "
                        + "its embedding would silently differ (see EmbedTexts.requireUtf8Safe)", i, bad));
            }
        }
    }

    /** Returns one embedding per text. */
    public static float[][] embed(OrtSession session, OrtEnvironment env, String[] texts) throws OrtException {
        requireUtf8Safe(texts);
        try (OnnxTensor input = OnnxTensor.createTensor(env, texts);
             OrtSession.Result result = session.run(Map.of("text", input))) {
            OnnxValue output = result.get("sentence_embedding")
                .orElseThrow(() -> new IllegalStateException("model has no sentence_embedding output"));
            return (float[][]) output.getValue();
        }
    }

    public static void main(String[] args) throws OrtException {
        if (args.length < 2) {
            System.err.println("usage: EmbedTexts MODEL.onnx TEXT [TEXT...]");
            System.exit(2);
        }
        String[] texts = Arrays.copyOfRange(args, 1, args.length);
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.registerCustomOpLibrary(System.getProperty("ortx.library", OrtxPackage.getLibraryPath()));
            try (OrtSession session = env.createSession(args[0], options)) {
                float[][] embeddings = embed(session, env, texts);
                for (int i = 0; i < texts.length; i++) {
                    float[] row = embeddings[i];
                    System.out.printf("%s\t[%d floats] %.6f %.6f %.6f ...%n", texts[i], row.length, row[0], row[1],
                                      row[2]);
                }
            }
        }
    }
}
