package dev.fyp.flink.envelope;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;

/**
 * Every schema of {@code schemas/avro}, packed into this jar under {@code fyp/avro/}, addressed by the
 * fingerprint of single-object encoding: the Java side of {@code schemas/registry.py}.
 *
 * <p>Files are {@code <Record>.avsc} (the current version) and {@code <Record>.v<N>.avsc} (older ones); a
 * schema's version is the default of its {@code schema_version} field. The fingerprint is the CRC-64-AVRO of
 * the Parsing Canonical Form, written little-endian after the marker {@code C3 01}.
 */
public final class EventSchemas {

    /** The directory of the .avsc files inside the jar (Maven resources, see pom.xml). */
    public static final String RESOURCE_DIR = "fyp/avro/";

    private static final Pattern FILE_NAME = Pattern.compile("([A-Z][A-Za-z0-9]*)(?:\\.v([1-9][0-9]*))?\\.avsc");

    /** One schema file. */
    public static final class Entry {
        public final String recordName;
        /** snake_case record name, e.g. {@code sound_engagement}. */
        public final String eventType;
        public final int version;
        public final long fingerprint;
        public final Schema schema;
        /** The current version of the same record (this entry's schema when it is the current one). */
        public Schema latest;

        Entry(String recordName, int version, long fingerprint, Schema schema) {
            this.recordName = recordName;
            this.eventType = eventType(recordName);
            this.version = version;
            this.fingerprint = fingerprint;
            this.schema = schema;
        }

        public boolean isLatest() {
            return latest == schema;
        }
    }

    private final Map<Long, Entry> byFingerprint;

    private EventSchemas(Map<Long, Entry> byFingerprint) {
        this.byFingerprint = byFingerprint;
    }

    /** The entry whose fingerprint is the little-endian long at bytes 2..9 of a payload, or null. */
    public Entry byFingerprint(long fingerprint) {
        return byFingerprint.get(fingerprint);
    }

    public int size() {
        return byFingerprint.size();
    }

    public List<Long> fingerprints() {
        return new ArrayList<>(byFingerprint.keySet());
    }

    /** {@code SoundEngagement} -> {@code sound_engagement}, as registry.event_type_of does. */
    public static String eventType(String recordName) {
        StringBuilder out = new StringBuilder(recordName.length() + 4);
        for (int i = 0; i < recordName.length(); i++) {
            char c = recordName.charAt(i);
            if (Character.isUpperCase(c)) {
                if (i > 0) {
                    out.append('_');
                }
                out.append(Character.toLowerCase(c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    /** The schemas packed into this jar (loaded once per class loader). */
    public static EventSchemas bundled() {
        return Holder.BUNDLED;
    }

    private static final class Holder {
        static final EventSchemas BUNDLED = load(readBundled());
    }

    /** Builds the registry from file name -> .avsc text; throws IllegalStateException on a bad set. */
    public static EventSchemas load(Map<String, String> files) {
        if (files.isEmpty()) {
            throw new IllegalStateException("no .avsc files found under " + RESOURCE_DIR);
        }
        Map<Long, Entry> byFingerprint = new HashMap<>();
        Map<String, Entry> current = new HashMap<>();
        List<Entry> all = new ArrayList<>();
        for (Map.Entry<String, String> file : new TreeMap<>(files).entrySet()) {
            Matcher m = FILE_NAME.matcher(file.getKey());
            if (!m.matches()) {
                throw new IllegalStateException(file.getKey() + ": schema files are named <Record>.avsc or <Record>.v<N>.avsc");
            }
            Schema schema = new Schema.Parser().parse(file.getValue());
            Schema.Field versionField = schema.getField("schema_version");
            if (versionField == null || !(versionField.defaultVal() instanceof Integer)) {
                throw new IllegalStateException(file.getKey() + ": needs an int field schema_version with a default");
            }
            long fingerprint = SchemaNormalization.parsingFingerprint64(schema);
            Entry entry = new Entry(m.group(1), (Integer) versionField.defaultVal(), fingerprint, schema);
            if (byFingerprint.put(fingerprint, entry) != null) {
                throw new IllegalStateException(file.getKey() + ": another file has the same fingerprint");
            }
            all.add(entry);
            if (m.group(2) == null) {
                current.put(entry.recordName, entry);
            }
        }
        for (Entry entry : all) {
            Entry latest = current.get(entry.recordName);
            if (latest == null) {
                throw new IllegalStateException(entry.recordName + ": no current version (" + entry.recordName + ".avsc)");
            }
            entry.latest = latest.schema;
        }
        return new EventSchemas(byFingerprint);
    }

    /** file name -> text of every .avsc under RESOURCE_DIR of the jar (or classes directory) holding this class. */
    static Map<String, String> readBundled() {
        Map<String, String> files = new TreeMap<>();
        try {
            URL location = EventSchemas.class.getProtectionDomain().getCodeSource().getLocation();
            Path path = Path.of(location.toURI());
            if (Files.isDirectory(path)) {
                Path dir = path.resolve(RESOURCE_DIR);
                try (Stream<Path> list = Files.list(dir)) {
                    for (Path p : (Iterable<Path>) list::iterator) {
                        String name = p.getFileName().toString();
                        if (name.endsWith(".avsc")) {
                            files.put(name, Files.readString(p, StandardCharsets.UTF_8));
                        }
                    }
                }
            } else {
                try (JarFile jar = new JarFile(path.toFile())) {
                    Enumeration<JarEntry> entries = jar.entries();
                    while (entries.hasMoreElements()) {
                        JarEntry e = entries.nextElement();
                        String name = e.getName();
                        if (name.startsWith(RESOURCE_DIR) && name.endsWith(".avsc") && name.indexOf('/', RESOURCE_DIR.length()) < 0) {
                            try (InputStream in = jar.getInputStream(e)) {
                                files.put(name.substring(RESOURCE_DIR.length()), new String(in.readAllBytes(), StandardCharsets.UTF_8));
                            }
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading the bundled .avsc files", e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException("locating the bundled .avsc files", e);
        }
        return files;
    }
}
