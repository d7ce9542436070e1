import com.sun.jna.Function;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.LongByReference;
import com.sun.jna.ptr.PointerByReference;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs st-exporter's string-in {@code model.onnx} from a JVM, through ONNX Runtime's C API: N named string
 * inputs of one batch ({@code text} of an embedding model, {@code query} and {@code document} of a reranker) in,
 * every float output out.
 *
 * <p>The proof that the artifact runs outside a Python interpreter. ONNX Runtime Java (the Maven
 * artifact) cannot be fetched on the machine that runs the tests, so this program makes, through JNA,
 * the C API calls that ONNX Runtime Java's JNI layer makes: {@code OrtGetApiBase()->GetApi()}, then
 * {@code RegisterCustomOpsLibrary} (what {@code SessionOptions.registerCustomOpLibrary} calls),
 * {@code CreateSession}, one string tensor per input filled from a Java {@code String[]} with
 * {@code FillStringTensor}, and {@code Run}. No header is needed: the OrtApi function table is
 * append-only and each slot used here is fixed since API version 1 (see {@link Slot}); the program
 * checks the table with a status round trip and the model's input/output names before it trusts it.
 *
 * <pre>
 * java -cp /usr/share/java/jna.jar:. OrtCApiRun --ort libonnxruntime.so --extensions libortx.so \
 *     [--preload libpython3.11.so] --model model.onnx --input query=queries.b64 --input document=documents.b64 \
 *     --out outputs/ [--encoding utf-8|modified-utf-8]
 * </pre>
 *
 * <p>Each {@code --input NAME=FILE.b64}: one string per line, Base64 of its UTF-8 bytes; the names must be the
 * model's inputs, and every file holds the same N lines. For each float output, {@code outputs/NAME.f32}: float32
 * little-endian, row-major, its shape in the JSON line on stdout that describes the run.
 * {@code --preload} loads a library RTLD_GLOBAL first (the extensions library of the Python wheel
 * needs libpython's symbols; nothing initializes or runs an interpreter). {@code --encoding modified-utf-8}
 * encodes each String the way JNI's {@code GetStringUTFChars} does.
 */
public final class OrtCApiRun {

    /** Indices into the OrtApi function table (stable ABI: OrtApi only ever grows at its end). */
    enum Slot {
        CREATE_STATUS(0), GET_ERROR_CODE(1), GET_ERROR_MESSAGE(2), CREATE_ENV(3), CREATE_SESSION(7), RUN(9),
        CREATE_SESSION_OPTIONS(10), SET_INTRA_OP_NUM_THREADS(24), REGISTER_CUSTOM_OPS_LIBRARY(29),
        SESSION_GET_INPUT_COUNT(30), SESSION_GET_OUTPUT_COUNT(31), SESSION_GET_INPUT_NAME(36),
        SESSION_GET_OUTPUT_NAME(37), CREATE_TENSOR_AS_ORT_VALUE(48), GET_TENSOR_MUTABLE_DATA(51),
        FILL_STRING_TENSOR(52), GET_TENSOR_ELEMENT_TYPE(60), GET_DIMENSIONS_COUNT(61), GET_DIMENSIONS(62), GET_TENSOR_TYPE_AND_SHAPE(65),
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
    private static final int TENSOR_FLOAT = 1;
    private static final int TENSOR_STRING = 8;
    private static final int RTLD_NOW_GLOBAL = 0x2 | 0x100;

    private final Pointer api;

    private OrtCApiRun(Pointer api) {
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

    /** Returns a string tensor [N] of the texts (the C strings it was filled from are copied by FillStringTensor). */
    private Pointer stringTensor(Pointer allocator, String[] texts, boolean modified) {
        long[] shape = new long[] {texts.length};
        PointerByReference tensor = new PointerByReference();
        call(Slot.CREATE_TENSOR_AS_ORT_VALUE, "CreateTensorAsOrtValue", allocator, shape, (long) shape.length,
             TENSOR_STRING, tensor);
        List<Memory> strings = cStrings(texts, modified);
        call(Slot.FILL_STRING_TENSOR, "FillStringTensor", tensor.getValue(), strings.get(0), (long) texts.length);
        Reference.reachabilityFence(strings);  // the C strings must outlive the call, not just the array
        return tensor.getValue();
    }

    /** Returns a char*[] holding the names (kept alive by the list; the array is its first element). */
    private static List<Memory> nameArray(List<String> names) {
        List<Memory> memory = new ArrayList<>();
        Memory array = new Memory((long) names.size() * Native.POINTER_SIZE);
        memory.add(array);
        for (int i = 0; i < names.size(); i++) {
            byte[] bytes = names.get(i).getBytes(StandardCharsets.UTF_8);
            Memory name = new Memory(bytes.length + 1L);
            name.write(0, bytes, 0, bytes.length);
            name.setByte(bytes.length, (byte) 0);
            array.setPointer((long) i * Native.POINTER_SIZE, name);
            memory.add(name);
        }
        return memory;
    }

    private long[] dimensions(Pointer info) {
        LongByReference rank = new LongByReference();
        call(Slot.GET_DIMENSIONS_COUNT, "GetDimensionsCount", info, rank);
        long[] dims = new long[(int) rank.getValue()];
        call(Slot.GET_DIMENSIONS, "GetDimensions", info, dims, rank.getValue());
        return dims;
    }

    /** Writes a float output to {@code out/NAME.f32} and returns its shape, or returns null for another type. */
    private List<Long> writeFloats(Pointer value, String name, int batch, Path out) throws IOException {
        PointerByReference info = new PointerByReference();
        call(Slot.GET_TENSOR_TYPE_AND_SHAPE, "GetTensorTypeAndShape", value, info);
        IntByReference type = new IntByReference();
        call(Slot.GET_TENSOR_ELEMENT_TYPE, "GetTensorElementType", info.getValue(), type);
        long[] dims = dimensions(info.getValue());
        fn(Slot.RELEASE_TENSOR_TYPE_AND_SHAPE_INFO).invokeVoid(new Object[] {info.getValue()});
        if (type.getValue() != TENSOR_FLOAT) {
            return null;
        }
        if (dims.length == 0 || dims[0] != batch) {
            throw new IllegalStateException("output " + name + ": unexpected shape " + Arrays.toString(dims));
        }
        long count = 1;
        List<Long> shape = new ArrayList<>();
        for (long dim : dims) {
            count *= dim;
            shape.add(dim);
        }
        PointerByReference data = new PointerByReference();
        call(Slot.GET_TENSOR_MUTABLE_DATA, "GetTensorMutableData", value, data);
        float[] values = count == 0 ? new float[0] : data.getValue().getFloatArray(0, (int) count);
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        Files.write(out.resolve(name + ".f32"), bytes.array());
        return shape;
    }

    private Map<String, Object> run(Path model, String extensions, Map<String, String[]> feeds, boolean modified,
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
        if (!new HashSet<>(inputs).equals(feeds.keySet())) {
            throw new IllegalStateException("the model takes " + inputs + "; given " + feeds.keySet());
        }
        int batch = feeds.get(inputs.get(0)).length;
        Memory inputValues = new Memory((long) inputs.size() * Native.POINTER_SIZE);
        for (int i = 0; i < inputs.size(); i++) {
            String[] texts = feeds.get(inputs.get(i));
            if (texts.length != batch) {
                throw new IllegalStateException("input " + inputs.get(i) + " has " + texts.length + " strings, "
                                                + inputs.get(0) + " " + batch);
            }
            inputValues.setPointer((long) i * Native.POINTER_SIZE, stringTensor(allocator.getValue(), texts, modified));
        }
        List<Memory> inputNames = nameArray(inputs);
        List<Memory> outputNames = nameArray(outputs);
        Memory outputValues = new Memory((long) outputs.size() * Native.POINTER_SIZE);
        outputValues.clear();
        long start = System.nanoTime();
        call(Slot.RUN, "Run", session.getValue(), null, inputNames.get(0), inputValues, (long) inputs.size(),
             outputNames.get(0), (long) outputs.size(), outputValues);
        double seconds = (System.nanoTime() - start) / 1e9;
        Reference.reachabilityFence(inputNames);
        Reference.reachabilityFence(outputNames);

        Map<String, Object> shapes = new LinkedHashMap<>();
        for (int i = 0; i < outputs.size(); i++) {
            Pointer value = outputValues.getPointer((long) i * Native.POINTER_SIZE);
            List<Long> shape = writeFloats(value, outputs.get(i), batch, out);
            if (shape != null) {
                shapes.put(outputs.get(i), shape);
            }
            fn(Slot.RELEASE_VALUE).invokeVoid(new Object[] {value});
        }
        for (int i = 0; i < inputs.size(); i++) {
            fn(Slot.RELEASE_VALUE).invokeVoid(new Object[] {inputValues.getPointer((long) i * Native.POINTER_SIZE)});
        }
        fn(Slot.RELEASE_SESSION).invokeVoid(new Object[] {session.getValue()});
        fn(Slot.RELEASE_SESSION_OPTIONS).invokeVoid(new Object[] {options.getValue()});
        fn(Slot.RELEASE_ENV).invokeVoid(new Object[] {env.getValue()});

        Map<String, Object> report = new LinkedHashMap<>();
        report.put("inputs", inputs);
        report.put("outputs", outputs);
        report.put("shapes", shapes);
        report.put("batch", batch);
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

    private static String[] readStrings(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file, StandardCharsets.US_ASCII);
        String[] texts = new String[lines.size()];
        for (int i = 0; i < texts.length; i++) {
            texts[i] = new String(Base64.getDecoder().decode(lines.get(i)), StandardCharsets.UTF_8);
        }
        return texts;
    }

    public static void main(String[] argv) throws IOException {
        Map<String, String> args = new HashMap<>();
        Map<String, String[]> feeds = new LinkedHashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            String key = argv[i].replaceFirst("^--", "");
            if (key.equals("input")) {
                String[] nameFile = argv[i + 1].split("=", 2);
                feeds.put(nameFile[0], readStrings(Path.of(nameFile[1])));
            } else {
                args.put(key, argv[i + 1]);
            }
        }
        for (String required : List.of("ort", "extensions", "model", "out")) {
            if (!args.containsKey(required)) {
                System.err.println("missing --" + required);
                System.exit(2);
            }
        }
        if (feeds.isEmpty()) {
            System.err.println("missing --input NAME=FILE.b64");
            System.exit(2);
        }
        NativeLibrary preloaded = null;
        if (args.containsKey("preload")) {
            preloaded = NativeLibrary.getInstance(args.get("preload"), Map.of(Library.OPTION_OPEN_FLAGS, RTLD_NOW_GLOBAL));
        }
        NativeLibrary ort = NativeLibrary.getInstance(args.get("ort"));
        Pointer base = ort.getFunction("OrtGetApiBase").invokePointer(new Object[0]);
        Pointer api = Function.getFunction(base.getPointer(0)).invokePointer(new Object[] {API_VERSION});
        if (api == null) {
            throw new IllegalStateException("this onnxruntime does not serve OrtApi version " + API_VERSION);
        }
        String version = Function.getFunction(base.getPointer(Native.POINTER_SIZE)).invokeString(new Object[0], false);
        Path out = Files.createDirectories(Path.of(args.get("out")));
        Map<String, Object> report = new OrtCApiRun(api).run(
            Path.of(args.get("model")), args.get("extensions"), feeds,
            "modified-utf-8".equals(args.getOrDefault("encoding", "utf-8")), out);
        report.put("onnxruntime", version);
        report.put("java", System.getProperty("java.version"));
        if (preloaded != null) {  // a library loaded for its symbols only: no interpreter was started
            report.put("python_initialized", preloaded.getFunction("Py_IsInitialized").invokeInt(new Object[0]) != 0);
        }
        System.out.println(json(report));
    }
}
