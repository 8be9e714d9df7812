/**
 * Comments and docs may cite only files inside the repository. A citation of a file that is not here
 * (a design note, a reference sheet, a path on the machine the code was written on) cannot be checked
 * by a reader and drifts without anyone noticing; a repository path that no longer exists (a renamed
 * doc or module) is the same drift one step later. This scanner reads every tracked text file and
 * fails on both, naming file and line.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Folders never scanned when git is not available to list the tracked files. */
const UNTRACKED_FOLDERS = new Set(['node_modules', '.git', '.local', 'cdk.out', 'dist', '.tmp']);
/**
 * The allow-list. package-lock.json is generated, not written here; this file holds, as examples the
 * scanner must catch, the references it forbids everywhere else.
 */
const SKIPPED_FILES = new Set(['package-lock.json', 'test/unit/repository-references.test.ts']);
const TEXT_EXTENSIONS = new Set(['.ts', '.md', '.json', '.mjs', '.js', '.yml', '.yaml', '.sh', '']);

/** The repository's top-level folders: a path starting with one of them is a repository path. */
const REPOSITORY_FOLDERS = ['bench', 'cdk', 'core', 'docs', 'lambdas', 'local', 'test', 'types', 'worker'];

/**
 * Text that names a place outside the repository. The patterns are written escaped so that this file
 * does not match itself.
 */
const OUTSIDE_REFERENCES: readonly { name: string; pattern: RegExp }[] = [
  { name: 'the machine-local /work folder', pattern: /(^|[\s('"`])\/work\// },
  {
    name: 'a shared folder beside the repository',
    pattern: /\.\.\/shared\b|\bshared\/(seed|design|reference)/,
  },
  { name: 'the design notes kept outside the repository', pattern: /\bdesign\.md\b/ },
  { name: 'the reference sheet kept outside the repository', pattern: /\breference\.md\b/ },
  { name: 'a home folder', pattern: /(^|[\s('"`])(~\/|\/home\/|\/Users\/)/ },
];

function trackedFiles(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    return out.split('\0').filter((file) => file !== '' && existsSync(path.join(REPO_ROOT, file)));
  } catch {
    return walk('');
  }
}

function walk(relativeDir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(path.join(REPO_ROOT, relativeDir), { withFileTypes: true })) {
    const relative = relativeDir === '' ? entry.name : `${relativeDir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (!UNTRACKED_FOLDERS.has(entry.name)) files.push(...walk(relative));
    } else if (entry.isFile()) {
      files.push(relative);
    }
  }
  return files;
}

function textFiles(): string[] {
  return trackedFiles().filter((file) => !SKIPPED_FILES.has(file) && TEXT_EXTENSIONS.has(path.extname(file)));
}

interface Finding {
  file: string;
  line: number;
  text: string;
  why: string;
}

/** A line that names a place outside the repository. */
function outsideReferences(file: string, content: string): Finding[] {
  const findings: Finding[] = [];
  content.split('\n').forEach((text, index) => {
    for (const { name, pattern } of OUTSIDE_REFERENCES) {
      if (pattern.test(text)) findings.push({ file, line: index + 1, text: text.trim(), why: name });
    }
  });
  return findings;
}

const REPOSITORY_PATH = new RegExp(
  `(?<![\\w./-])((?:${REPOSITORY_FOLDERS.join('|')})/[\\w./-]*[\\w-]\\.(?:ts|md|mjs|json|lua|sh))(?![\\w*<])`,
  'g',
);
const ESCAPING_RELATIVE_PATH = /(?<![\w.])((?:\.\.\/)+)[\w.-]+/g;

/** A repository path (`docs/worker.md`, `worker/main.ts`) that does not exist, or a `../` leaving the repository. */
function brokenPaths(file: string, content: string, exists: (relative: string) => boolean): Finding[] {
  const findings: Finding[] = [];
  content.split('\n').forEach((text, index) => {
    for (const match of text.matchAll(REPOSITORY_PATH)) {
      const cited = match[1] as string;
      if (cited.includes('*') || cited.includes('<')) continue;
      if (!exists(cited)) {
        findings.push({ file, line: index + 1, text: text.trim(), why: `${cited} is not in the repository` });
      }
    }
    for (const match of text.matchAll(ESCAPING_RELATIVE_PATH)) {
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), match[0]));
      if (resolved.startsWith('../')) {
        findings.push({ file, line: index + 1, text: text.trim(), why: `${match[0]} leaves the repository` });
      }
    }
  });
  return findings;
}

const SECTION_CITATION = /\b(README(?:\.md)?|docs\/[\w-]+\.md),? "([^"]+)"/g;

/**
 * Where a doc can be cited by name: a heading, a bold term (`**Coverage**: ...`) or the words a
 * paragraph starts with (`What the strings do not prevent:`).
 */
function hasSection(markdown: string, section: string): boolean {
  const wanted = section.toLowerCase();
  return markdown.split('\n').some((line) => {
    const lower = line.toLowerCase();
    const heading = /^#+\s+(.*)$/.exec(lower);
    if (heading) return (heading[1] as string).includes(wanted);
    if ([...lower.matchAll(/\*\*([^*]+)\*\*/g)].some((bold) => (bold[1] as string).includes(wanted)))
      return true;
    return lower.replace(/^[\s>*-]+/, '').startsWith(wanted);
  });
}

/** A citation `docs/x.md, "Section"` whose section (heading, bold term, paragraph start) is not in that doc. */
function brokenSections(
  file: string,
  content: string,
  read: (relative: string) => string | undefined,
): Finding[] {
  const findings: Finding[] = [];
  content.split('\n').forEach((text, index) => {
    for (const match of text.matchAll(SECTION_CITATION)) {
      const doc = match[1] === 'README' ? 'README.md' : (match[1] as string);
      const section = match[2] as string;
      const markdown = read(doc);
      if (markdown === undefined) continue; // a missing file is brokenPaths' finding
      if (!hasSection(markdown, section))
        findings.push({ file, line: index + 1, text: text.trim(), why: `${doc} has no "${section}"` });
    }
  });
  return findings;
}

function format(findings: Finding[]): string[] {
  return findings.map((f) => `${f.file}:${f.line}: ${f.why}: ${f.text}`);
}

describe('references to files', () => {
  const files = textFiles();
  const tracked = new Set(trackedFiles());
  const exists = (relative: string): boolean =>
    tracked.has(relative) ||
    (existsSync(path.join(REPO_ROOT, relative)) && statSync(path.join(REPO_ROOT, relative)).isFile());

  it('scans the repository (the scanner sees the files it checks)', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('docs/worker.md');
    expect(files).toContain('worker/main.ts');
    expect(files.some((file) => file.startsWith('node_modules/'))).toBe(false);
  });

  it('no source, test or doc names a place outside the repository', () => {
    const findings = files.flatMap((file) =>
      outsideReferences(file, readFileSync(path.join(REPO_ROOT, file), 'utf8')),
    );
    expect(format(findings)).toEqual([]);
  });

  it('every repository path a source, test or doc names exists', () => {
    const findings = files.flatMap((file) =>
      brokenPaths(file, readFileSync(path.join(REPO_ROOT, file), 'utf8'), exists),
    );
    expect(format(findings)).toEqual([]);
  });

  it('every section a source, test or doc cites by name is in the doc it names', () => {
    const read = (relative: string): string | undefined =>
      exists(relative) ? readFileSync(path.join(REPO_ROOT, relative), 'utf8') : undefined;
    const findings = files.flatMap((file) =>
      brokenSections(file, readFileSync(path.join(REPO_ROOT, file), 'utf8'), read),
    );
    expect(format(findings)).toEqual([]);
  });

  it('catches each kind of reference it is meant to catch (the scanner itself can fail)', () => {
    const outside = [
      ['core/a.ts', ' * The keys of design.md part 1.'],
      ['docs/a.md', 'see reference.md for ElastiCache'],
      ['bench/a.ts', ' * The seed (/work/shared/seed) as it was.'],
      ['worker/a.ts', "import x from '../shared/x.ts';"],
      ['README.md', 'copied from ~/notes.txt'],
    ] as const;
    for (const [file, line] of outside) {
      expect(outsideReferences(file, line), line).not.toEqual([]);
    }
    expect(outsideReferences('core/a.ts', ' * The keys of docs/worker.md, "Keys".')).toEqual([]);
    expect(outsideReferences('local/a.ts', "const dir = '/tmp/work/x';")).toEqual([]);

    const known = (relative: string): boolean => relative === 'docs/worker.md' || relative === 'core/keys.ts';
    expect(brokenPaths('core/a.ts', ' * See docs/worker.md and core/keys.ts.', known)).toEqual([]);
    expect(brokenPaths('core/a.ts', ' * See docs/workers.md.', known)).toHaveLength(1);
    expect(brokenPaths('test/unit/a.ts', "import '../../worker/x.ts';", known)).toEqual([]);
    expect(brokenPaths('test/unit/a.ts', "import '../../../shared/x.ts';", known)).toHaveLength(1);
    expect(brokenPaths('README.md', 'tests in `test/unit/**/*.test.ts`', known)).toEqual([]);

    const doc = '# Worker\n## Replay and event identity\n- **Coverage**: ...\nWhat it does not do:\n';
    const read = (relative: string): string | undefined => (relative === 'docs/worker.md' ? doc : undefined);
    for (const cited of ['Event identity', 'Coverage', 'What it does not do']) {
      expect(brokenSections('core/a.ts', ` * (docs/worker.md, "${cited}")`, read), cited).toEqual([]);
    }
    expect(brokenSections('core/a.ts', ' * (docs/worker.md, "Fencing")', read)).toHaveLength(1);
    expect(brokenSections('core/a.ts', ' * (docs/worker.md "Fencing")', read)).toHaveLength(1);
  });
});
