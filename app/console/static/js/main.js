// The console's shell: hash routes, one module per page, sign-out on a refused key.
// Each page module exports render(root, context) and stops its work when context.signal aborts.
import { alertBox, h, replace } from './dom.js';
import { clearKey, getKey } from './session.js';

const ROUTES = [
  { pattern: /^#\/signin$/, page: 'signin', section: null, open: true },
  { pattern: /^#\/jobs$/, page: 'jobs', section: 'jobs' },
  { pattern: /^#\/jobs\/new$/, page: 'newjob', section: 'jobs' },
  { pattern: /^#\/jobs\/([\w-]+)$/, page: 'job', section: 'jobs' },
  { pattern: /^#\/files$/, page: 'files', section: 'files' },
  { pattern: /^#\/files\/([\w-]+)$/, page: 'file', section: 'files' },
  { pattern: /^#\/models$/, page: 'models', section: 'models' },
  { pattern: /^#\/evals$/, page: 'evals', section: 'evals' },
  { pattern: /^#\/evals\/([\w-]+)$/, page: 'eval', section: 'evals' },
  // A run's `report_url` (app/evals/endpoints.py) points here.
  { pattern: /^#\/evals\/([\w-]+)\/runs\/([\w-]+)$/, page: 'evalrun', section: 'evals' },
  { pattern: /^#\/playground(?:\/(.+))?$/, page: 'playground', section: 'playground' },
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutButton = document.getElementById('sign-out');
let current = null;
let generation = 0;
// What the sign-in page should say (a refused key, a signed-out session) and where to go after it.
const notice = { message: null, next: null };

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function takeNotice() {
  const taken = { ...notice };
  notice.message = null;
  notice.next = null;
  return taken;
}

function signOut(message) {
  clearKey();
  notice.message = message;
  navigate('#/signin');
}

function showChrome(signedIn, section) {
  nav.hidden = !signedIn;
  signOutButton.hidden = !signedIn;
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function every(signal, milliseconds, task) {
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') task();
  }, milliseconds);
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}

async function route() {
  const mine = ++generation;
  current?.abort();
  current = new AbortController();
  const { signal } = current;
  const hash = location.hash || '#/jobs';
  const found = ROUTES.map((entry) => ({ entry, match: entry.pattern.exec(hash) })).find((item) => item.match);
  if (!getKey() && !found?.entry.open) {
    notice.next = found ? hash : null;
    navigate('#/signin');
    return;
  }
  showChrome(Boolean(getKey()), found?.entry.section);
  replace(main);
  if (!found) {
    replace(main, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/jobs' }, 'Back to the jobs')));
    return;
  }
  try {
    const page = await import(`./pages/${found.entry.page}.js`);
    if (mine !== generation) return;
    const context = {
      params: found.match.slice(1),
      signal,
      navigate,
      takeNotice,
      every: (milliseconds, task) => every(signal, milliseconds, task),
    };
    const rendering = page.render(main, context);
    focusHeading();
    await rendering;
  } catch (error) {
    if (error.name === 'AbortError' || signal.aborted || error.handled) return;
    main.append(alertBox(error.message));
  }
}

function focusHeading() {
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · Fine-tuning console`;
  }
}

window.addEventListener('console:unauthorized', (event) => {
  signOut(`The API refused the key: ${event.detail}`);
});
// Work cut short by leaving a page is not an error.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason?.name === 'AbortError') event.preventDefault();
});
signOutButton.addEventListener('click', () => signOut('Signed out. The key was removed from this tab.'));
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', route);
route();
