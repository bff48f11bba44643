// Server-rendered HTML for the ops pages: one escape function that every interpolated value goes
// through (the `markup` tag escapes by default; only a value wrapped by `raw` is trusted), and the page
// frame (UTF-8, a little CSS, the signed-in user and a logout button). No scripts, no build step.

/** A fragment already escaped (or written by us): inserted as is. */
export class Raw {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function raw(text: string): Raw {
  return new Raw(text);
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

type Value = Raw | string | number | boolean | undefined | null | readonly Value[];

function render(value: Value): string {
  if (value === undefined || value === null || value === false) return '';
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return (value as readonly Value[]).map(render).join('');
  return escapeHtml(value);
}

/** Tagged template (named so that prettier leaves the markup alone): every `${value}` is escaped unless it is a Raw (a nested `markup` result is one). */
export function markup(strings: TemplateStringsArray, ...values: Value[]): Raw {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Raw(out);
}

const STYLE = `
body{font-family:system-ui,"Noto Sans JP","Hiragino Sans",sans-serif;margin:0;color:#222}
header{background:#23395d;color:#fff;padding:.5rem 1rem;display:flex;gap:1.5rem;align-items:center}
header a{color:#fff}header .who{margin-left:auto}
main{padding:1rem}table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef}td.num{text-align:right}form.inline{display:inline}
.flash{background:#ffd;border:1px solid #cc9;padding:.5rem;margin-bottom:1rem}
.error{color:#a00}.ok{color:#070}fieldset{margin-bottom:1rem}label{margin-right:1rem}
`;

export interface PageFrame {
  title: string;
  /** signed in as; absent on the login page */
  user?: string;
  csrf?: string;
  flash?: string;
  body: Raw;
}

export function page(frame: PageFrame): string {
  const nav = frame.user
    ? markup`<nav>
          <a href="/">Runs and failures</a> <a href="/archive">Archive</a>
          <a href="/queues">Queues (Bull Board)</a>
        </nav>
        <span class="who"
          >${frame.user}
          <form class="inline" method="post" action="/logout">
            <input type="hidden" name="csrf" value="${frame.csrf}" /><button type="submit">Log out</button>
          </form></span
        >`
    : '';
  return render(
    markup`<!DOCTYPE html>
      <html lang="ja">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width" />
          <title>${frame.title} — sealer</title>
          <style>
            ${raw(STYLE)}
          </style>
        </head>
        <body>
          <header><strong>sealer ops</strong>${nav}</header>
          <main>
            <h1>${frame.title}</h1>
            ${frame.flash ? markup`<div class="flash" id="flash">${frame.flash}</div>` : ''} ${frame.body}
          </main>
        </body>
      </html>`,
  );
}

/** A POST button with the session's CSRF token and hidden fields. */
export function actionButton(
  action: string,
  label: string,
  csrf: string,
  fields: Record<string, string> = {},
  id?: string,
): Raw {
  return markup`<form class="inline" method="post" action="${action}">
    <input type="hidden" name="csrf" value="${csrf}" />${Object.entries(fields).map(
      ([k, v]) => markup`<input type="hidden" name="${k}" value="${v}" />`,
    )}<button type="submit" ${id ? raw(` id="${escapeHtml(id)}"`) : ''}>${label}</button>
  </form>`;
}
