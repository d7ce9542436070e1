import com.sun.jna.Function;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Embeds texts with st-exporter's string-in {@code model.onnx} from a JVM, through ONNX Runtime's C API.
 *
 * <p>The proof that the artifact runs outside a Python interpreter. ONNX Runtime Java (the Maven
 * artifact) cannot be fetched on the machine that runs the tests, so this program makes, through JNA,
 * the C API calls that ONNX Runtime Java's JNI layer makes: {@code OrtGetApiBase()->GetApi()}, then
 * {@code RegisterCustomOpsLibrary} (what {@code SessionOptions.registerCustomOpLibrary} calls),
 * {@code CreateSession}, a string tensor filled from a Java {@code String[]} with
 * {@code FillStringTensor}, and {@code Run}. No header is needed: the OrtApi function table is
 * append-only and each slot used here is fixed since API version 1 (see {@link Slot}); the program
 * checks the table with a status round trip and the model's input/output names before it trusts it.
 *
 * <pre>
 * java -cp /usr/share/java/jna.jar:. OrtCApiEmbed --ort libonnxruntime.so --extensions libortx.so \
 *     [--preload libpython3.11.so] --model model.onnx --texts texts.b64 --out embeddings.f32 \
 *     [--encoding utf-8|modified-utf-8]
 * </pre>
 *
 * <p>{@code texts.b64}: one text per line, Base64 of its UTF-8 bytes. {@code embeddings.f32}: float32
 * little-endian, row-major [N, D]. One JSON line on stdout describes the run.
 * {@code --preload} loads a library RTLD_GLOBAL first (the extensions library of the Python wheel
 * needs libpython's symbols; nothing initializes or runs an interpreter). {@code --encoding modified-utf-8}
 * encodes each String the way JNI's {@code GetStringUTFChars} does.
 */
public final class OrtCApiEmbed {

    /** Indices into the OrtApi function table (stable ABI: OrtApi only ever grows at its end). */
    enum Slot {
        CREATE_STATUS(0), GET_ERROR_CODE(1), GET_ERROR_MESSAGE(2), CREATE_ENV(3), CREATE_SESSION(7), RUN(9),
        CREATE_SESSION_OPTIONS(10), SET_INTRA_OP_NUM_THREADS(24), REGISTER_CUSTOM_OPS_LIBRARY(29),
        SESSION_GET_INPUT_COUNT(30), SESSION_GET_OUTPUT_COUNT(31), SESSION_GET_INPUT_NAME(36),
        SESSION_GET_OUTPUT_NAME(37), CREATE_TENSOR_AS_ORT_VALUE(48), GET_TENSOR_MUTABLE_DATA(51),
        FILL_STRING_TENSOR(52), GET_DIMENSIONS_COUNT(61), GET_DIMENSIONS(62), GET_TENSOR_TYPE_AND_SHAPE(65),
        ALLOCATOR_FREE(76), GET_ALLOCATOR_WITH_DEFAULT_OPTIONS(78), RELEASE_ENV(92), RELEASE_STATUS(93),
        RELEASE_SESSION(95), RELEASE_VALUE(96), RELEASE_TENSOR_TYPE_AND_SHAPE_INFO(99),
        RELEASE_SESSION_OPTIONS(100);

        final int index;

        Slot(int index) {
            this.index = index;
        }
    }

    private static final int API_VERSION = 16;  // onnxruntime >= 1.16 serves this table
    private static final int ORT_LOGGING_LEVEL_ERROR = 3;
    private static final int ORT_INVALID_ARGUMENT = 2;
    private static final int TENSOR_STRING = 8;
    private static final int RTLD_NOW_GLOBAL = 0x2 | 0x100;

    private final Pointer api;

    private OrtCApiEmbed(Pointer api) {
        this.api = api;
    }

    private Function fn(Slot slot) {
        return Function.getFunction(api.getPointer((long) slot.index * Native.POINTER_SIZE));
    }

    private void check(Pointer status, String what) {
        if (status == null) {
            return;
        }
        String message = fn(Slot.GET_ERROR_MESSAGE).invokeString(new Object[] {status}, false);
        fn(Slot.RELEASE_STATUS).invokeVoid(new Object[] {status});
        throw new IllegalStateException(what + ": " + message);
    }

    private void call(Slot slot, String what, Object... args) {
        check(fn(slot).invokePointer(args), what);
    }

    /** Proves the table is where we think it is: a status made by slot 0 reads back through slots 1 and 2. */
    private void checkTable() {
        Pointer status = fn(Slot.CREATE_STATUS).invokePointer(new Object[] {ORT_INVALID_ARGUMENT, "st-exporter probe"});
        int code = fn(Slot.GET_ERROR_CODE).invokeInt(new Object[] {status});
        String message = fn(Slot.GET_ERROR_MESSAGE).invokeString(new Object[] {status}, false);
        fn(Slot.RELEASE_STATUS).invokeVoid(new Object[] {status});
        if (code != ORT_INVALID_ARGUMENT || !"st-exporter probe".equals(message)) {
            throw new IllegalStateException("OrtApi table check failed: code " + code + ", message " + message);
        }
    }

    private List<String> names(Pointer session, Pointer allocator, Slot count, Slot name) {
        LongByReference n = new LongByReference();
        call(count, count.name(), session, n);
        List<String> out = new ArrayList<>();
        for (long i = 0; i < n.getValue(); i++) {
            PointerByReference value = new PointerByReference();
            call(name, name.name(), session, i, allocator, value);
            out.add(value.getValue().getString(0, "UTF-8"));
            call(Slot.ALLOCATOR_FREE, "AllocatorFree", allocator, value.getValue());
        }
        return out;
    }

    /** JNI "modified UTF-8": U+0000 as C0 80 and each UTF-16 surrogate as its own 3-byte sequence. */
    static byte[] modifiedUtf8(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c != 0 && c < 0x80) {
                out.write(c);
            } else if (c < 0x800) {
                out.write(0xC0 | (c >> 6));
                out.write(0x80 | (c & 0x3F));
            } else {
                out.write(0xE0 | (c >> 12));
                out.write(0x80 | ((c >> 6) & 0x3F));
                out.write(0x80 | (c & 0x3F));
            }
        }
        return out.toByteArray();
    }

    /** Returns a char*[] of NUL-terminated copies of the texts (kept alive by the returned list). */
    private static List<Memory> cStrings(String[] texts, boolean modified) {
        List<Memory> memory = new ArrayList<>();
        Memory array = new Memory((long) Math.max(1, texts.length) * Native.POINTER_SIZE);
        memory.add(array);
        for (int i = 0; i < texts.length; i++) {
            byte[] bytes = modified ? modifiedUtf8(texts[i]) : texts[i].getBytes(StandardCharsets.UTF_8);
            Memory text = new Memory(bytes.length + 1L);
            text.write(0, bytes, 0, bytes.length);
            text.setByte(bytes.length, (byte) 0);
            array.setPointer((long) i * Native.POINTER_SIZE, text);
            memory.add(text);
        }
        return memory;
    }

    private Map<String, Object> embed(Path model, String extensions, String[] texts, boolean modified,
                                      Path out) throws IOException {
        checkTable();
        PointerByReference env = new PointerByReference();
        call(Slot.CREATE_ENV, "CreateEnv", ORT_LOGGING_LEVEL_ERROR, "st-exporter", env);
        PointerByReference options = new PointerByReference();
        call(Slot.CREATE_SESSION_OPTIONS, "CreateSessionOptions", options);
        call(Slot.SET_INTRA_OP_NUM_THREADS, "SetIntraOpNumThreads", options.getValue(), 2);
        PointerByReference library = new PointerByReference();
        call(Slot.REGISTER_CUSTOM_OPS_LIBRARY, "RegisterCustomOpsLibrary " + extensions, options.getValue(),
             extensions, library);
        PointerByReference session = new PointerByReference();
        call(Slot.CREATE_SESSION, "CreateSession " + model, env.getValue(), model.toString(), options.getValue(),
             session);
        PointerByReference allocator = new PointerByReference();
        call(Slot.GET_ALLOCATOR_WITH_DEFAULT_OPTIONS, "GetAllocatorWithDefaultOptions", allocator);
        List<String> inputs = names(session.getValue(), allocator.getValue(), Slot.SESSION_GET_INPUT_COUNT,
                                    Slot.SESSION_GET_INPUT_NAME);
        List<String> outputs = names(session.getValue(), allocator.getValue(), Slot.SESSION_GET_OUTPUT_COUNT,
                                     Slot.SESSION_GET_OUTPUT_NAME);
        if (!inputs.equals(List.of("text")) || !outputs.contains("sentence_embedding")) {
            throw new IllegalStateException("unexpected model signature: " + inputs + " -> " + outputs);
        }

        long[] shape = new long[] {texts.length};
        PointerByReference input = new PointerByReference();
        call(Slot.CREATE_TENSOR_AS_ORT_VALUE, "CreateTensorAsOrtValue", allocator.getValue(), shape,
             (long) shape.length, TENSOR_STRING, input);
        List<Memory> strings = cStrings(texts, modified);
        call(Slot.FILL_STRING_TENSOR, "FillStringTensor", input.getValue(), strings.get(0), (long) texts.length);

        Memory inputNames = new Memory(Native.POINTER_SIZE);
        Memory inputName = new Memory(5);
        inputName.setString(0, "text", "UTF-8");
        inputNames.setPointer(0, inputName);
        Memory outputNames = new Memory(Native.POINTER_SIZE);
        Memory outputName = new Memory(19);
        outputName.setString(0, "sentence_embedding", "UTF-8");
        outputNames.setPointer(0, outputName);
        Memory inputValues = new Memory(Native.POINTER_SIZE);
        inputValues.setPointer(0, input.getValue());
        Memory outputValues = new Memory(Native.POINTER_SIZE);
        outputValues.setPointer(0, null);
        long start = System.nanoTime();
        call(Slot.RUN, "Run", session.getValue(), null, inputNames, inputValues, 1L, outputNames, 1L, outputValues);
        double seconds = (System.nanoTime() - start) / 1e9;
        Pointer output = outputValues.getPointer(0);

        PointerByReference info = new PointerByReference();
        call(Slot.GET_TENSOR_TYPE_AND_SHAPE, "GetTensorTypeAndShape", output, info);
        LongByReference rank = new LongByReference();
        call(Slot.GET_DIMENSIONS_COUNT, "GetDimensionsCount", info.getValue(), rank);
        long[] dims = new long[(int) rank.getValue()];
        call(Slot.GET_DIMENSIONS, "GetDimensions", info.getValue(), dims, rank.getValue());
        fn(Slot.RELEASE_TENSOR_TYPE_AND_SHAPE_INFO).invokeVoid(new Object[] {info.getValue()});
        if (dims.length != 2 || dims[0] != texts.length) {
            throw new IllegalStateException("unexpected output shape " + java.util.Arrays.toString(dims));
        }
        PointerByReference data = new PointerByReference();
        call(Slot.GET_TENSOR_MUTABLE_DATA, "GetTensorMutableData", output, data);
        float[] values = data.getValue().getFloatArray(0, (int) (dims[0] * dims[1]));
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        Files.write(out, bytes.array());

        fn(Slot.RELEASE_VALUE).invokeVoid(new Object[] {output});
        fn(Slot.RELEASE_VALUE).invokeVoid(new Object[] {input.getValue()});
        fn(Slot.RELEASE_SESSION).invokeVoid(new Object[] {session.getValue()});
        fn(Slot.RELEASE_SESSION_OPTIONS).invokeVoid(new Object[] {options.getValue()});
        fn(Slot.RELEASE_ENV).invokeVoid(new Object[] {env.getValue()});

        Map<String, Object> report = new HashMap<>();
        report.put("inputs", inputs);
        report.put("outputs", outputs);
        report.put("shape", List.of(dims[0], dims[1]));
        report.put("run_seconds", seconds);
        return report;
    }

    private static String json(Object value) {
        if (value instanceof String) {
            return "\"" + ((String) value).replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
        }
        if (value instanceof List) {
            List<String> parts = new ArrayList<>();
            for (Object item : (List<?>) value) {
                parts.add(json(item));
            }
            return "[" + String.join(", ", parts) + "]";
        }
        if (value instanceof Map) {
            List<String> parts = new ArrayList<>();
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                parts.add(json(entry.getKey().toString()) + ": " + json(entry.getValue()));
            }
            return "{" + String.join(", ", parts) + "}";
        }
        return String.valueOf(value);
    }

    public static void main(String[] argv) throws IOException {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        for (String required : List.of("ort", "extensions", "model", "texts", "out")) {
            if (!args.containsKey(required)) {
                System.err.println("missing --" + required);
                System.exit(2);
            }
        }
        NativeLibrary preloaded = null;
        if (args.containsKey("preload")) {
            preloaded = NativeLibrary.getInstance(args.get("preload"), Map.of(Library.OPTION_OPEN_FLAGS, RTLD_NOW_GLOBAL));
        }
        List<String> lines = Files.readAllLines(Path.of(args.get("texts")), StandardCharsets.US_ASCII);
        String[] texts = new String[lines.size()];
        for (int i = 0; i < texts.length; i++) {
            texts[i] = new String(Base64.getDecoder().decode(lines.get(i)), StandardCharsets.UTF_8);
        }
        NativeLibrary ort = NativeLibrary.getInstance(args.get("ort"));
        Pointer base = ort.getFunction("OrtGetApiBase").invokePointer(new Object[0]);
        Pointer api = Function.getFunction(base.getPointer(0)).invokePointer(new Object[] {API_VERSION});
        if (api == null) {
            throw new IllegalStateException("this onnxruntime does not serve OrtApi version " + API_VERSION);
        }
        String version = Function.getFunction(base.getPointer(Native.POINTER_SIZE)).invokeString(new Object[0], false);
        Map<String, Object> report = new OrtCApiEmbed(api).embed(
            Path.of(args.get("model")), args.get("extensions"), texts,
            "modified-utf-8".equals(args.getOrDefault("encoding", "utf-8")), Path.of(args.get("out")));
        report.put("onnxruntime", version);
        report.put("java", System.getProperty("java.version"));
        report.put("texts", texts.length);
        if (preloaded != null) {  // a library loaded for its symbols only: no interpreter was started
            report.put("python_initialized", preloaded.getFunction("Py_IsInitialized").invokeInt(new Object[0]) != 0);
        }
        System.out.println(json(report));
    }
}
