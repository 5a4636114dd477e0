/*
 * A form generated from a tool's JSON Schema (`parameters_schema`).
 *
 * One field per property, by type:
 *
 *   string             text input (a select when the schema lists an `enum`)
 *   number / integer   number input
 *   boolean            checkbox
 *   object / array     a JSON editor (textarea), parsed as you type, with the
 *                      parse error shown under it
 *
 * The form checks only what it must to build the message: required fields
 * are filled in, numbers are numbers, JSON parses. Everything else is the
 * server's to judge (the schema lives there), and its `invalid_parameters`
 * answer comes back through `showServerErrors(details)`, each problem under
 * the field it names (`field`), the rest in the form's summary.
 *
 *     const form = new SchemaForm(container);
 *     form.setTool(tool);
 *     const { ok, parameters } = form.collect();
 */
const JSON_KINDS = new Set(["object", "array"]);

function typeOf(property) {
  const types = Array.isArray(property.type) ? property.type : [property.type];
  const kind = types.find((type) => type && type !== "null");
  if (kind) return kind;
  if (property.properties) return "object";
  return property.enum ? "string" : "json";
}

function make(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

export class SchemaForm {
  constructor(container, { onSubmitShortcut = () => {} } = {}) {
    this.container = container;
    this.onSubmitShortcut = onSubmitShortcut;
    this.fields = new Map(); // name -> {kind, required, input, error, wrapper}
  }

  setTool(tool) {
    this.container.replaceChildren();
    this.fields.clear();
    const schema = tool.parameters_schema || {};
    const required = new Set(schema.required || []);
    for (const [name, property] of Object.entries(schema.properties || {})) {
      this.container.appendChild(this.field(tool.name, name, property || {}, required.has(name)));
    }
    if (!this.fields.size) this.container.appendChild(make("p", { class: "hint" }, "This tool takes no parameters."));
  }

  field(toolName, name, property, required) {
    const kind = typeOf(property);
    const id = `param-${toolName}-${name}`.replace(/[^\w-]/g, "_");
    const wrapper = make("div", { class: `field field-${JSON_KINDS.has(kind) || kind === "json" ? "json" : kind}`,
      "data-field": name });
    const label = make("label", { for: id }, property.title || name);
    if (required) {
      label.appendChild(make("span", { class: "required", "aria-hidden": "true" }, " *"));
      label.appendChild(make("span", { class: "visually-hidden" }, " (required)"));
    }
    const input = this.input(kind, property, id, required);
    const error = make("p", { class: "field-error", id: `${id}-error`, hidden: "" });
    const described = [`${id}-error`];
    const parts = kind === "boolean" ? [input, label] : [label];
    if (property.description) {
      parts.push(make("p", { class: "hint", id: `${id}-hint` }, property.description));
      described.unshift(`${id}-hint`);
    }
    if (kind !== "boolean") parts.push(input);
    input.setAttribute("aria-describedby", described.join(" "));
    wrapper.append(...parts, error);
    this.fields.set(name, { kind, required, input, error, wrapper });
    return wrapper;
  }

  input(kind, property, id, required) {
    let input;
    if (kind === "boolean") {
      input = make("input", { type: "checkbox", id });
      input.checked = property.default === true;
    } else if (kind === "number" || kind === "integer") {
      input = make("input", { type: "number", id, step: kind === "integer" ? "1" : "any", inputmode: "decimal" });
      if (property.default !== undefined) input.value = String(property.default);
    } else if (kind === "string" && Array.isArray(property.enum)) {
      input = make("select", { id });
      if (!required) input.appendChild(make("option", { value: "" }, "—"));
      for (const choice of property.enum) input.appendChild(make("option", { value: choice }, String(choice)));
      if (property.default !== undefined) input.value = property.default;
    } else if (kind === "string") {
      input = make("input", { type: property.format === "uri" ? "url" : "text", id, autocomplete: "off" });
      if (property.default !== undefined) input.value = String(property.default);
    } else {
      input = this.jsonEditor(kind, property, id);
    }
    if (required) input.setAttribute("aria-required", "true");
    return input;
  }

  jsonEditor(kind, property, id) {
    const placeholder = kind === "array" ? '[1, 2, 3]' : '{"key": "value"}';
    const editor = make("textarea", { id, rows: "6", spellcheck: "false", class: "json-editor", placeholder });
    if (property.default !== undefined) editor.value = JSON.stringify(property.default, null, 2);
    editor.addEventListener("input", () => this.checkJson(editor));
    editor.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.onSubmitShortcut();
    });
    return editor;
  }

  checkJson(editor) {
    const entry = [...this.fields.values()].find((field) => field.input === editor);
    if (!entry) return;
    const parsed = this.parseJson(editor.value);
    this.setError(entry, parsed.error || "");
  }

  parseJson(text) {
    if (!text.trim()) return { empty: true };
    try {
      return { value: JSON.parse(text) };
    } catch (error) {
      return { error: `Not valid JSON: ${error.message}` };
    }
  }

  /* The parameters object, or {ok: false} with the problems shown at the fields. */
  collect() {
    this.clearErrors();
    const parameters = {};
    let firstBad = null;
    for (const [name, field] of this.fields) {
      const { value, error, omit } = this.read(field);
      if (error) {
        this.setError(field, error);
        firstBad = firstBad || field;
      } else if (!omit) {
        parameters[name] = value;
      }
    }
    if (firstBad) firstBad.input.focus();
    return { ok: !firstBad, parameters };
  }

  read(field) {
    const { kind, required, input } = field;
    if (kind === "boolean") return { value: input.checked };
    const raw = input.value;
    if (!raw.trim()) return required ? { error: "This field is required." } : { omit: true };
    if (kind === "number" || kind === "integer") {
      const number = Number(raw);
      if (!Number.isFinite(number)) return { error: "Enter a number." };
      if (kind === "integer" && !Number.isInteger(number)) return { error: "Enter a whole number." };
      return { value: number };
    }
    if (kind === "string") return { value: raw };
    const parsed = this.parseJson(raw);
    return parsed.error ? { error: parsed.error } : { value: parsed.value };
  }

  /* Places the server's `details`; returns the messages no field could take. */
  showServerErrors(details) {
    const unplaced = [];
    let first = null;
    for (const problem of details || []) {
      const field = problem.field != null ? this.fields.get(String(problem.field)) : undefined;
      if (!field) {
        unplaced.push(problem.message);
        continue;
      }
      const where = problem.path && problem.path !== problem.field ? ` (at ${problem.path})` : "";
      this.setError(field, problem.message + where, { append: true });
      first = first || field;
    }
    if (first) first.input.focus();
    return unplaced;
  }

  setError(field, message, { append = false } = {}) {
    const text = append && field.error.textContent ? `${field.error.textContent}\n${message}` : message;
    field.error.textContent = text;
    field.error.hidden = !text;
    field.wrapper.classList.toggle("has-error", Boolean(text));
    if (text) field.input.setAttribute("aria-invalid", "true");
    else field.input.removeAttribute("aria-invalid");
  }

  clearErrors() {
    for (const field of this.fields.values()) this.setError(field, "");
  }
}
